"""Schemathesis over every operation of the committed spec, against the real app in process.

Each operation is fuzzed with schema-valid (positive) and schema-invalid (negative) requests, as
the identities that can reach its deeper code: a patient's and a therapist's login token for
`login` routes, a patient-scoped read token for `/v1/patients/{patient_id}/...`, nobody for the
public routes. Most positive cases name real things (the patient, the grant, a live entry and its
current ETag) so they get past 404 and 412 into the code that does the work; the rest keep the
ids schemathesis made up. Every response must hold to the spec: no 5xx, a documented status
code, the documented content type, a body that matches its schema.

Schemathesis calls the ASGI app from its own event-loop thread, so the test is synchronous and
builds its own app on the session's database; schemathesis runs that app's lifespan.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import OutputConfig, SanitizationConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.conftest import make_settings
from tests.support.entries import EDIT, body
from tests.support.people import PASSWORD, invite, unique_email
from tests.support.sharing import ALL_SCOPES

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation, identity and mode. About 90 (operation, identity) runs: some 1,900
# cases, under a minute on SQLite.
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 6}
# Reproductions keep ids, Idempotency-Keys and bodies readable; credentials stay filtered.
CONFIG = schemathesis.Config(
    output=OutputConfig(
        sanitization=SanitizationConfig(
            keys_to_sanitize=("authorization", "password", "current_password"),
            sensitive_markers=("password",),
        )
    )
)
JOURNAL = ("sessions", "intentions", "reflections", "checkins", "assessments")

Json = dict[str, Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


def spec_operations(spec: Json) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


@dataclass
class Actor:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """Real accounts, a grant, a read token and live entries, made through the API."""

    http: asgi.ASGIClient
    patient: Actor
    therapist: Actor
    therapist_email: str
    patient_email: str
    grant_id: str
    read_token: str
    # Entries the patient's own routes may read and edit (PATCH changes them).
    own: dict[str, str]
    # Entries only the therapist's read token reads: never edited, never private.
    shared: dict[str, str]
    cases: int = 0
    operations: set[str] = field(default_factory=set)
    # Status codes seen, per operation: where the cases got to.
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def request(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response

    def create_entry(self, resource: str) -> str:
        response = self.request(
            "POST", f"/v1/{resource}", 201, json=body(resource), headers=self.patient.headers
        )
        entry_id: str = response.json()["id"]
        return entry_id

    def etag(self, path: str, headers: dict[str, str]) -> str:
        etag: str = self.request("GET", path, 200, headers=headers).headers["ETag"]
        return etag

    def spare_grant(self) -> str:
        """A grant of its own to revoke, so the one the read token hangs on stays active."""
        response = self.request(
            "POST",
            "/v1/grants",
            201,
            json={"therapist_email": self.therapist_email, "scopes": ["checkins:read"]},
            headers=self.patient.headers,
        )
        grant_id: str = response.json()["id"]
        return grant_id


def signup(http: asgi.ASGIClient, role: str) -> tuple[Actor, str]:
    email = unique_email(role)
    account = {"email": email, "password": PASSWORD, "display_name": f"Fuzz {role}", "role": role}
    if role == "therapist":
        account["invitation_code"] = asyncio.run(invite(email))
    created = http.post("/v1/accounts", json=account)
    assert created.status_code == 201, created.text
    login = http.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return Actor(created.json()["id"], login.json()["access_token"]), email


def build_world(http: asgi.ASGIClient) -> World:
    patient, patient_email = signup(http, "patient")
    therapist, therapist_email = signup(http, "therapist")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    granted = http.post(
        "/v1/grants",
        json={"therapist_email": therapist_email, "scopes": ALL_SCOPES, "expires_at": expires},
        headers=patient.headers,
    )
    assert granted.status_code == 201, granted.text
    grant_id = granted.json()["id"]
    minted = http.post(f"/v1/grants/{grant_id}/token", headers=therapist.headers)
    assert minted.status_code == 200, minted.text
    world = World(
        http=http,
        patient=patient,
        therapist=therapist,
        therapist_email=therapist_email,
        patient_email=patient_email,
        grant_id=grant_id,
        read_token=minted.json()["access_token"],
        own={},
        shared={},
    )
    for resource in JOURNAL:
        world.own[resource] = world.create_entry(resource)
        world.shared[resource] = world.create_entry(resource)
    return world


def identities(operation: Json) -> list[str]:
    """Who calls an operation: the identities whose token gets past authentication there."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if "patient_read" in schemes:
        return ["reader"]
    if "login" in schemes:
        return ["patient", "therapist"]
    return ["anonymous"]


def auth_headers(world: World, identity: str) -> dict[str, str]:
    return {
        "patient": world.patient.headers,
        "therapist": world.therapist.headers,
        "reader": {"Authorization": f"Bearer {world.read_token}"},
        "anonymous": {},
    }[identity]


def journal_resource(path: str) -> str:
    return next(name for name in JOURNAL if f"/{name}/" in f"{path}/")


def realise(world: World, case: AnyCase, identity: str) -> dict[str, str]:
    """Swap made-up ids for real ones and a made-up If-Match for the current ETag, and make the
    parts of a body that must name something real name it, so the case reaches the work.
    Returns the headers to call with."""
    params = case.path_parameters
    method = case.method.upper()
    if case.path == "/v1/me" and method == "DELETE":
        return erasable(world, case, identity)
    if "patient_id" in params:
        params["patient_id"] = world.patient.id
    if "grant_id" in params:
        params["grant_id"] = world.spare_grant() if method == "DELETE" else world.grant_id
    if "entry_id" in params:
        resource = journal_resource(case.path)
        if identity == "reader":
            params["entry_id"] = world.shared[resource]
        elif method == "DELETE" and identity == "patient":
            params["entry_id"] = world.create_entry(resource)
        else:
            params["entry_id"] = world.own[resource]
        if method in {"PATCH", "DELETE"} and identity == "patient":
            path = f"/v1/{resource}/{params['entry_id']}"
            case.headers["If-Match"] = world.etag(path, world.patient.headers)
    if case.path == "/v1/me" and method == "PATCH":
        case.headers["If-Match"] = world.etag("/v1/me", auth_headers(world, identity))
    if method == "POST" and isinstance(case.body, dict):
        realise_body(world, case.path, case.body)
    return auth_headers(world, identity)


def erasable(world: World, case: AnyCase, identity: str) -> dict[str, str]:
    """Erasure with the right password, by an account made for it: a patient with a check-in
    and a grant, or a therapist."""
    actor, _ = signup(world.http, identity)
    if identity == "patient":
        checkin = {"mood": 5, "note": "to be erased"}
        world.request("POST", "/v1/checkins", 201, json=checkin, headers=actor.headers)
        grant = {"therapist_email": world.therapist_email, "scopes": ["checkins:read"]}
        world.request("POST", "/v1/grants", 201, json=grant, headers=actor.headers)
    if isinstance(case.body, dict):
        case.body["password"] = PASSWORD
    return actor.headers


ASSESSMENT_ITEMS = {"phq9": (9, 3), "gad7": (7, 3), "pcl5": (20, 4)}


def realise_body(world: World, path: str, data: Json) -> None:
    if path == "/v1/accounts":
        data["email"] = unique_email("fuzz")
    elif path == "/v1/grants":
        data["therapist_email"] = world.therapist_email
    elif path == "/v1/auth/token":
        data.update(grant_type="password", username=world.patient_email, password=PASSWORD)
    elif path == "/v1/assessments" and data.get("instrument") in ASSESSMENT_ITEMS:
        # As many answers as the instrument has items, each in its range.
        count, top = ASSESSMENT_ITEMS[data["instrument"]]
        drawn = [a for a in data.get("answers", []) if isinstance(a, int)] or [0]
        data["answers"] = [min(top, max(0, drawn[i % len(drawn)])) for i in range(count)]
    elif path == "/v1/sync":
        for operation in data.get("operations", []):
            realise_sync_operation(world, operation)


def realise_sync_operation(world: World, operation: Json) -> None:
    resource = operation.get("resource")
    if resource not in JOURNAL:
        return
    if operation.get("op") == "create":
        operation["data"] = body(resource)
        operation.pop("id", None)
    elif operation.get("op") in {"update", "delete"}:
        entry_id = world.create_entry(resource)
        operation["id"] = entry_id
        operation["if_match"] = world.etag(f"/v1/{resource}/{entry_id}", world.patient.headers)
        if operation["op"] == "update":
            operation["data"] = EDIT.get(resource, {"private": True})


def exercise(world: World, label: str, operation: Operation, identity: str) -> list[str]:
    """Fuzz one operation as one identity in both modes; the failures, as text, in a list."""
    failures: list[str] = []
    for mode, examples in EXAMPLES.items():
        try:
            fuzz(world, label, operation, identity, mode, examples)
        except Unsatisfiable:
            # Nothing to negate: the operation takes no parameters and no body.
            assert mode is GenerationMode.NEGATIVE, label
        except (Exception, FailureGroup) as exc:
            failures.append(f"{label} as {identity} ({mode.value}):\n{exc}")
    return failures


def fuzz(
    world: World,
    label: str,
    operation: Operation,
    identity: str,
    mode: GenerationMode,
    examples: int,
) -> None:
    headers = auth_headers(world, identity)

    @given(case=operation.as_strategy(generation_mode=mode), real=st.integers(0, 3))
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: AnyCase, real: int) -> None:
        world.cases += 1
        world.operations.add(label)
        sent = headers
        if mode is GenerationMode.POSITIVE and real != 3:
            sent = realise(world, case, identity)
        response = case.call(headers=sent)
        world.statuses[label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=sent)

    run()


@contextmanager
def logging_kept() -> Iterator[None]:
    """The app's lifespan configures logging for the process; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


def test_every_operation_holds_to_the_committed_spec(database_url: str, tmp_path: Path) -> None:
    raw: Json = json.loads(SPEC_PATH.read_text())
    documented = spec_operations(raw)
    app = create_app(make_settings(tmp_path, database_url, log_level="WARNING"))
    schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)
    schema.app = app
    schema.config.update(base_url=f"http://{asgi.HOST}")
    operations: dict[str, Operation] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    assert set(operations) == documented

    failures: list[str] = []
    with logging_kept():
        try:
            with asgi.get_client(cast("asgi.ASGIApp", app)) as http:
                world = build_world(http)
                for label, operation in sorted(operations.items()):
                    method, path = label.split(" ", 1)
                    for identity in identities(raw["paths"][path][method.lower()]):
                        failures += exercise(world, label, operation, identity)
        finally:
            asgi.shutdown_lifespans()

    print(f"\nschemathesis {schemathesis.__version__}")
    for label in sorted(world.statuses):
        seen = " ".join(f"{code}x{n}" for code, n in sorted(world.statuses[label].items()))
        print(f"  {label}: {seen}")
    total: Counter[int] = sum(world.statuses.values(), Counter())
    print(
        f"{len(world.operations)} of {len(documented)} operations, {world.cases} cases; "
        + " ".join(f"{code}x{n}" for code, n in sorted(total.items()))
    )
    for failure in failures:
        print(f"\n--- {failure}")
    assert world.operations == documented
    assert not failures, f"{len(failures)} operation runs broke the spec: see the output above"
