"""Grants, read tokens and shared reads, driven as a state machine against a plain model.

Hypothesis interleaves at random what a patient, two therapists and a second patient do: give,
revoke, give up and expire grants, mint read tokens, read, write entries and flip their privacy.
Every answer is predicted from the model (a record of grants, tokens and entries) before it is
checked, and no read may ever show a private entry or another patient's entry.

State machines are synchronous: the app runs in an event loop of this test's own, and each rule
drives it with ``run_until_complete``. The only write that bypasses the API is the one that makes a
grant's ``expires_at`` lie in the past, since waiting for it is not an option.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import hypothesis
from fastapi import FastAPI
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import update

from api.app import create_app
from api.models import Grant
from api.models.base import utcnow
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client
from tests.support.entries import EDITABLE, RESOURCES, body
from tests.support.people import Person, register

T = TypeVar("T")

SCOPES = (
    "sessions:read",
    "intentions:read",
    "reflections:read",
    "checkins:read",
    "assessments:read",
    "summary:read",
)
SHARER, OTHER = 0, 1  # patients: the one who gives grants, and one who never does
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
scope_lists = st.lists(st.sampled_from(SCOPES), min_size=1, unique=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class GrantModel:
    id: str
    therapist: int
    scopes: frozenset[str]
    revoked_by: str | None = None  # "patient" or "therapist": whoever ended it first
    expired: bool = False

    @property
    def live(self) -> bool:
        return self.revoked_by is None and not self.expired

    @property
    def state(self) -> str:
        if self.revoked_by is not None:
            return "revoked"
        return "expired" if self.expired else "active"


@dataclass
class TokenModel:
    grant: GrantModel
    scopes: frozenset[str]
    access_token: str = field(repr=False)


@dataclass
class EntryModel:
    id: str
    owner: int
    resource: str
    private: bool
    version: int


@dataclass
class Harness:
    """What outlives one example: the loop, the running app, its client, and the tallies."""

    loop: asyncio.AbstractEventLoop
    app: FastAPI
    client: httpx.AsyncClient
    stats: Counter[str]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def request(
        self, method: str, url: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), **(bearer(token) if token else {})}
        return self.run(self.client.request(method, url, headers=headers, **kwargs))


class GrantMachine(RuleBasedStateMachine):
    harness: ClassVar[Harness | None] = None

    def __init__(self) -> None:
        super().__init__()
        assert self.harness is not None, "run through test_grants_tokens_and_reads_follow_the_model"
        self.h = self.harness
        self.h.stats["examples"] += 1
        self.patients: list[Person] = [
            self.h.run(register(self.h.client, "patient")) for _ in range(2)
        ]
        self.therapists: list[Person] = [
            self.h.run(register(self.h.client, "therapist")) for _ in range(2)
        ]
        self.grant_models: list[GrantModel] = []
        self.token_models: list[TokenModel] = []
        self.entries: dict[str, EntryModel] = {}
        # Each patient starts with a shared and a private entry of every kind.
        for owner in (SHARER, OTHER):
            for resource in RESOURCES:
                for private in (False, True):
                    self._create(owner, resource, private)
        # What the reads of the last step answered, as (resource read, item): see the invariant.
        self.returned: list[tuple[str, dict[str, Any]]] = []
        self.steps = 0

    # --- helpers -----------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        self.steps += 1
        self.h.stats["steps"] += 1
        self.h.stats[f"rule {name}"] += 1
        self.returned = []

    def _create(self, owner: int, resource: str, private: bool) -> EntryModel:
        response = self.h.request(
            "POST",
            f"/v1/{resource}",
            self.patients[owner].access_token,
            json=body(resource, private=private),
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["private"] is private
        assert response.headers["etag"] == f'"{created["version"]}"'
        entry = EntryModel(created["id"], owner, resource, private, created["version"])
        self.entries[entry.id] = entry
        return entry

    def _give(self, therapist: int, scopes: list[str], days: int | None) -> GrantModel:
        payload: dict[str, Any] = {
            "therapist_email": self.therapists[therapist].email,
            "scopes": scopes,
        }
        if days is not None:
            payload["expires_at"] = (utcnow() + timedelta(days=days)).isoformat()
        response = self.h.request(
            "POST", "/v1/grants", self.patients[SHARER].access_token, json=payload
        )
        assert response.status_code == 201, response.text
        given = response.json()
        assert given["state"] == "active"
        assert given["scopes"] == sorted(scopes)
        grant = GrantModel(given["id"], therapist, frozenset(scopes))
        self.grant_models.append(grant)
        self._check_grant(grant)
        return grant

    def _check_grant(self, grant: GrantModel) -> None:
        """Both parties see the grant as the model has it."""
        for person in (self.patients[SHARER], self.therapists[grant.therapist]):
            response = self.h.request("GET", f"/v1/grants/{grant.id}", person.access_token)
            assert response.status_code == 200, response.text
            seen = response.json()
            assert seen["state"] == grant.state, (seen, grant)
            assert seen["revoked_by"] == grant.revoked_by, (seen, grant)
            assert (seen["revoked_at"] is None) == (grant.revoked_by is None)
            assert set(seen["scopes"]) == grant.scopes
            assert seen["therapist"]["id"] == self.therapists[grant.therapist].id
            assert seen["patient"]["id"] == self.patients[SHARER].id

    def _mint(self, grant: GrantModel, asked: list[str] | None) -> TokenModel | None:
        """Predict the answer from the model; a token minted is kept for later reads."""
        form = {} if asked is None else {"scope": " ".join(asked)}
        response = self.h.request(
            "POST",
            f"/v1/grants/{grant.id}/token",
            self.therapists[grant.therapist].access_token,
            data=form,
        )
        wanted = grant.scopes if asked is None else frozenset(asked)
        if not grant.live or not wanted <= grant.scopes:
            assert response.status_code == 403, (response.text, grant, asked)
            self.h.stats["mint 403"] += 1
            return None
        assert response.status_code == 200, (response.text, grant, asked)
        self.h.stats["mint 200"] += 1
        minted = response.json()
        assert minted["scope"] == " ".join(sorted(wanted))
        assert minted["grant_id"] == grant.id
        assert minted["patient_id"] == self.patients[SHARER].id
        assert minted["token_type"] == "Bearer"
        assert 0 < minted["expires_in"] <= 900
        token = TokenModel(grant, wanted, minted["access_token"])
        self.token_models.append(token)
        return token

    def _shared(self, resource: str) -> set[str]:
        return {
            e.id
            for e in self.entries.values()
            if e.owner == SHARER and e.resource == resource and not e.private
        }

    # --- grants ------------------------------------------------------------------------------

    @initialize(therapist=st.integers(0, 1), scopes=scope_lists)
    def start(self, therapist: int, scopes: list[str]) -> None:
        """Every example starts with a grant and a token, so reads come from the first step."""
        self._mint(self._give(therapist, scopes, None), None)

    @rule(
        therapist=st.integers(0, 1),
        scopes=scope_lists,
        days=st.none() | st.integers(1, 365),
    )
    def grant(self, therapist: int, scopes: list[str], days: int | None) -> None:
        self._step("grant")
        self._give(therapist, scopes, days)

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        self._step("revoke")
        grant = data.draw(st.sampled_from(self.grant_models), label="grant")
        response = self.h.request(
            "DELETE", f"/v1/grants/{grant.id}", self.patients[SHARER].access_token
        )
        assert response.status_code == 204, response.text
        if grant.revoked_by is None:
            grant.revoked_by = "patient"
        self._check_grant(grant)

    @rule(data=st.data())
    def give_up(self, data: st.DataObject) -> None:
        self._step("give_up")
        grant = data.draw(st.sampled_from(self.grant_models), label="grant")
        response = self.h.request(
            "DELETE", f"/v1/grants/{grant.id}", self.therapists[grant.therapist].access_token
        )
        assert response.status_code == 204, response.text
        if grant.revoked_by is None:
            grant.revoked_by = "therapist"
        self._check_grant(grant)

    @precondition(lambda self: any(not g.expired for g in self.grant_models))
    @rule(data=st.data(), ago=st.sampled_from([timedelta(minutes=1), timedelta(days=30)]))
    def expire(self, data: st.DataObject, ago: timedelta) -> None:
        """Make expires_at lie in the past: the one write that bypasses the API."""
        self._step("expire")
        grant = data.draw(
            st.sampled_from([g for g in self.grant_models if not g.expired]), label="grant"
        )
        sessionmaker = self.h.app.state.sessionmaker

        async def backdate() -> None:
            async with sessionmaker() as session, session.begin():
                await session.execute(
                    update(Grant)
                    .where(Grant.id == uuid.UUID(grant.id))
                    .values(expires_at=utcnow() - ago)
                )

        self.h.run(backdate())
        grant.expired = True
        self._check_grant(grant)

    @rule(data=st.data(), stranger=st.sampled_from(["patient", "therapist"]))
    def intrude(self, data: st.DataObject, stranger: str) -> None:
        """Someone who is not a party to the grant can neither see, end nor use it."""
        self._step("intrude")
        grant = data.draw(st.sampled_from(self.grant_models), label="grant")
        person = (
            self.patients[OTHER] if stranger == "patient" else self.therapists[1 - grant.therapist]
        )
        url = f"/v1/grants/{grant.id}"
        assert self.h.request("GET", url, person.access_token).status_code == 404
        assert self.h.request("DELETE", url, person.access_token).status_code == 404
        minted = self.h.request("POST", f"{url}/token", person.access_token)
        # A patient is refused for being a patient; a therapist finds no such grant.
        assert minted.status_code == (403 if stranger == "patient" else 404), minted.text
        self._check_grant(grant)

    @rule(therapist=st.integers(0, 1))
    def roster(self, therapist: int) -> None:
        """A therapist's patient list shows exactly the live grants they hold."""
        self._step("roster")
        response = self.h.request("GET", "/v1/patients", self.therapists[therapist].access_token)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert all(item["patient_id"] == self.patients[SHARER].id for item in items)
        assert {item["grant_id"] for item in items} == {
            g.id for g in self.grant_models if g.therapist == therapist and g.live
        }

    # --- read tokens -------------------------------------------------------------------------

    @rule(data=st.data())
    def mint(self, data: st.DataObject) -> None:
        """The grant's own scopes by default, a subset of them, or any set (maybe too many)."""
        self._step("mint")
        grant = data.draw(st.sampled_from(self.grant_models), label="grant")
        how = data.draw(st.sampled_from(["default", "within", "any"]), label="scope choice")
        asked: list[str] | None = None
        if how == "within":
            asked = data.draw(
                st.lists(st.sampled_from(sorted(grant.scopes)), min_size=1, unique=True),
                label="scope",
            )
        elif how == "any":
            asked = data.draw(scope_lists, label="scope")
        self._mint(grant, asked)

    # --- reads -------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.token_models))
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        """One to four reads with a minted token, each predicted from the model."""
        self._step("read")
        # Half the time a token whose grant still stands, if there is one: grants end often.
        choices = self.token_models
        live = [t for t in self.token_models if t.grant.live]
        prefer_live: bool = data.draw(st.booleans(), label="prefer live")
        if live and prefer_live:
            choices = live
        token = data.draw(st.sampled_from(choices), label="token")
        for _ in range(data.draw(st.integers(1, 4), label="reads")):
            self._read(token, data)

    def _read(self, token: TokenModel, data: st.DataObject) -> None:
        patient = data.draw(st.sampled_from([SHARER, SHARER, SHARER, OTHER]), label="patient")
        kind = data.draw(st.sampled_from(["list", "one", "summary"]), label="kind")
        if kind == "summary":
            self._summary(token, patient)
        elif kind == "one":
            entry = data.draw(
                st.none() | st.sampled_from(list(self.entries.values())), label="entry"
            )
            resource = data.draw(
                st.sampled_from(RESOURCES)
                if entry is None
                else st.just(entry.resource) | st.sampled_from(RESOURCES),
                label="resource",
            )
            self._one(token, patient, resource, str(uuid.uuid4()) if entry is None else entry.id)
        else:
            # Often a kind the token may read, sometimes any kind.
            readable = [r for r in RESOURCES if f"{r}:read" in token.scopes]
            resource = data.draw(
                st.sampled_from(readable or RESOURCES) | st.sampled_from(RESOURCES),
                label="resource",
            )
            limit = data.draw(st.sampled_from([1, 3, 50]), label="limit")
            self._list(token, patient, resource, limit)

    def _predict(self, token: TokenModel, patient: int, resource: str) -> int:
        """The order of checks: live grant (401), the token's patient (404), then scope (403)."""
        if not token.grant.live:
            return 401
        if patient != SHARER:
            return 404
        if f"{resource}:read" not in token.scopes:
            return 403
        return 200

    def _list(self, token: TokenModel, patient: int, resource: str, limit: int) -> None:
        """Every page, following next_cursor: exactly the shared entries, each once."""
        url = f"/v1/patients/{self.patients[patient].id}/{resource}"
        response = self.h.request("GET", url, token.access_token, params={"limit": limit})
        self._expect(response, self._predict(token, patient, resource))
        if response.status_code != 200:
            return
        ids: list[str] = []
        while True:
            page = response.json()
            assert len(page["items"]) <= limit
            self.returned.extend((resource, item) for item in page["items"])
            ids.extend(item["id"] for item in page["items"])
            if page["next_cursor"] is None:
                break
            response = self.h.request(
                "GET",
                url,
                token.access_token,
                params={"limit": limit, "cursor": page["next_cursor"]},
            )
            assert response.status_code == 200, response.text
        assert len(ids) == len(set(ids)), f"a page repeated an entry: {ids}"
        assert set(ids) == self._shared(resource), (resource, ids)

    def _one(self, token: TokenModel, patient: int, resource: str, entry_id: str) -> None:
        expected = self._predict(token, patient, resource)
        if expected == 200 and entry_id not in self._shared(resource):
            expected = 404  # private, another patient's, another kind, or unknown: all alike
        url = f"/v1/patients/{self.patients[patient].id}/{resource}/{entry_id}"
        response = self.h.request("GET", url, token.access_token)
        self._expect(response, expected)
        if response.status_code == 200:
            item = response.json()
            assert item["id"] == entry_id
            self.returned.append((resource, item))

    def _summary(self, token: TokenModel, patient: int) -> None:
        url = f"/v1/patients/{self.patients[patient].id}/summary"
        response = self.h.request("GET", url, token.access_token)
        self._expect(response, self._predict(token, patient, "summary"))
        if response.status_code == 200:
            # The summary names sessions and assessments by id: only shared ones may appear.
            for found in set(UUID_PATTERN.findall(response.text)) & set(self.entries):
                self.returned.append((self.entries[found].resource, {"id": found}))

    def _expect(self, response: httpx.Response, expected: int) -> None:
        self.h.stats["reads"] += 1
        self.h.stats[f"read {response.status_code}"] += 1
        assert response.status_code == expected, (expected, response.status_code, response.text)
        if expected != 200:
            assert response.headers["content-type"] == "application/problem+json"
        if expected == 403:
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]

    # --- the patients write ------------------------------------------------------------------

    @rule(
        owner=st.sampled_from([SHARER, SHARER, OTHER]),
        resource=st.sampled_from(RESOURCES),
        private=st.booleans(),
    )
    def write(self, owner: int, resource: str, private: bool) -> None:
        self._step("write")
        self._create(owner, resource, private)

    @precondition(lambda self: any(e.resource in EDITABLE for e in self.entries.values()))
    @rule(data=st.data())
    def flip_privacy(self, data: st.DataObject) -> None:
        self._step("flip_privacy")
        editable = [e for e in self.entries.values() if e.resource in EDITABLE]
        entry = data.draw(st.sampled_from(editable), label="entry")
        response = self.h.request(
            "PATCH",
            f"/v1/{entry.resource}/{entry.id}",
            self.patients[entry.owner].access_token,
            json={"private": not entry.private},
            headers={"If-Match": f'"{entry.version}"'},
        )
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["private"] is not entry.private
        assert changed["version"] == entry.version + 1
        assert response.headers["etag"] == f'"{changed["version"]}"'
        entry.private = changed["private"]
        entry.version = changed["version"]

    # --- what must always hold ---------------------------------------------------------------

    @invariant()
    def every_token_reads_what_the_model_allows(self) -> None:
        """After every step, each token minted so far lists one kind it may read (rotating), or
        the summary: a revoked or expired grant must stop all of its tokens at once."""
        for token in self.token_models:
            readable = [r for r in RESOURCES if f"{r}:read" in token.scopes]
            if readable:
                self._list(token, SHARER, readable[self.steps % len(readable)], 50)
            else:
                self._summary(token, SHARER)
        self.no_read_shows_a_private_or_foreign_entry()

    @invariant()
    def no_read_shows_a_private_or_foreign_entry(self) -> None:
        """Over everything read in the last step, by the rule and by the sweep above."""
        for resource, item in self.returned:
            entry = self.entries.get(item["id"])
            assert entry is not None, f"a read returned an entry nobody wrote: {item}"
            assert entry.owner == SHARER, f"a read returned another patient's entry: {item}"
            assert not entry.private, f"a read returned a private entry: {item}"
            assert item.get("private", False) is False, item
            assert entry.resource == resource, (resource, item)


def test_grants_tokens_and_reads_follow_the_model(settings: Settings, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(make_settings(tmp_path, settings.database_url))
    stack = contextlib.AsyncExitStack()
    stats: Counter[str] = Counter()
    try:
        loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
        client = loop.run_until_complete(
            stack.enter_async_context(
                conforming_client(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                )
            )
        )
        GrantMachine.harness = Harness(loop, app, client, stats)
        run_state_machine_as_test(
            GrantMachine,
            settings=hypothesis.settings(max_examples=25, stateful_step_count=20, deadline=None),
        )
    finally:
        GrantMachine.harness = None
        try:
            loop.run_until_complete(stack.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
        outcomes = ", ".join(
            f"{key} {stats[key]}" for key in sorted(stats) if key.startswith(("read ", "rule "))
        )
        print(
            f"\ngrant state machine: {stats['examples']} examples, {stats['steps']} steps, "
            f"{stats['reads']} reads checked ({outcomes}), "
            f"tokens minted {stats['mint 200']}, refused {stats['mint 403']}"
        )
    assert stats["read 200"] > 0, "no read succeeded: the machine explored nothing useful"
