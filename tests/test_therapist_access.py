"""Therapist access, the thing that must never be wrong: an authorization matrix over every actor
and every operation, then revocation, expiry, scopes, private entries and the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from api.models import AuditRecord, Grant
from tests.conftest import SERVER_URL
from tests.support.clock import Clock
from tests.support.entries import RESOURCES, body
from tests.support.people import Person, register
from tests.support.sharing import bearer, give_grant, mint

CANARY = "canary-private-7f3a"


@dataclass
class World:
    alice: Person
    bob: Person
    therapist: Person
    shared: dict[str, str]  # resource -> id of Alice's shared entry
    private: dict[str, str]  # resource -> id of Alice's private entry
    actors: dict[str, dict[str, str]]  # actor -> headers


async def expire(app: FastAPI, grant_id: str, at: datetime) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Grant).where(Grant.id == uuid.UUID(grant_id)).values(expires_at=at)
        )


async def build_world(app: FastAPI, client: httpx.AsyncClient) -> World:
    alice, bob, carol = await register(client), await register(client), await register(client)
    therapist = await register(client, "therapist")
    shared, private = {}, {}
    for resource in RESOURCES:
        made = await client.post(f"/v1/{resource}", json=body(resource), headers=alice.headers)
        shared[resource] = made.json()["id"]
        overrides: dict[str, Any] = {"private": True}
        if resource in ("intentions", "reflections"):
            overrides["text"] = CANARY
        hidden = await client.post(
            f"/v1/{resource}", json=body(resource, **overrides), headers=alice.headers
        )
        private[resource] = hidden.json()["id"]
        await client.post(f"/v1/{resource}", json=body(resource), headers=bob.headers)

    active = await give_grant(client, alice, therapist)
    revoked = await give_grant(client, alice, therapist)
    expired = await give_grant(client, alice, therapist)
    from_carol = await give_grant(client, carol, therapist)
    tokens = {
        "therapist, active grant": await mint(client, therapist, active["id"]),
        "therapist, revoked grant": await mint(client, therapist, revoked["id"]),
        "therapist, expired grant": await mint(client, therapist, expired["id"]),
        "therapist, another patient's grant": await mint(client, therapist, from_carol["id"]),
        "therapist, checkins:read only": await mint(
            client, therapist, active["id"], "checkins:read"
        ),
    }
    await client.delete(f"/v1/grants/{revoked['id']}", headers=alice.headers)
    await expire(app, expired["id"], datetime.now(UTC) - timedelta(seconds=1))
    actors = {
        "patient A": alice.headers,
        "patient B": bob.headers,
        "therapist login": therapist.headers,
        "anonymous": {},
        **{name: bearer(token) for name, token in tokens.items()},
    }
    return World(alice, bob, therapist, shared, private, actors)


def expected(actor: str, operation: str, resource: str) -> int:
    """The whole access policy, written out once as a table of rules."""
    own_route = operation.startswith("own ")
    if actor == "anonymous":
        return 401
    if own_route:
        if actor.startswith("therapist,"):
            return 401  # a read token is accepted nowhere but the therapist routes
        if actor == "therapist login":
            return 403
        if actor == "patient B":
            return 200 if operation == "own list" else 404
        return {"own list": 200, "own get": 200, "own patch": 412, "own delete": 412}[operation]
    # Therapist routes take read tokens only.
    if not actor.startswith("therapist,"):
        return 401
    if actor in ("therapist, revoked grant", "therapist, expired grant"):
        return 401
    if actor == "therapist, another patient's grant":
        return 404
    scope = "summary" if operation == "summary" else resource
    if actor == "therapist, checkins:read only" and scope != "checkins":
        return 403
    return 404 if operation == "get private" else 200


def request_for(world: World, operation: str, resource: str) -> tuple[str, str, dict[str, Any]]:
    alice = world.alice.id
    if operation == "own list":
        return "GET", f"/v1/{resource}", {}
    if operation == "own get":
        return "GET", f"/v1/{resource}/{world.shared[resource]}", {}
    if operation == "own patch":
        return (
            "PATCH",
            f"/v1/{resource}/{world.shared[resource]}",
            {"json": {"private": True}, "if_match": '"99"'},
        )
    if operation == "own delete":
        return "DELETE", f"/v1/{resource}/{world.shared[resource]}", {"if_match": '"99"'}
    if operation == "list":
        return "GET", f"/v1/patients/{alice}/{resource}", {}
    if operation == "get shared":
        return "GET", f"/v1/patients/{alice}/{resource}/{world.shared[resource]}", {}
    if operation == "get private":
        return "GET", f"/v1/patients/{alice}/{resource}/{world.private[resource]}", {}
    return "GET", f"/v1/patients/{alice}/summary", {}


OPERATIONS = ["own list", "own get", "own patch", "own delete", "list", "get shared", "get private"]


async def test_authorization_matrix(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await build_world(app, client)
    cells = 0
    failures = []
    alice_private = set(world.private.values())
    alice_all = alice_private | set(world.shared.values())
    combos = [(op, resource) for op in OPERATIONS for resource in RESOURCES] + [
        ("summary", "summary")
    ]
    for actor, headers in world.actors.items():
        for operation, resource in combos:
            if resource == "assessments" and operation == "own patch":
                continue  # assessments are never edited: no such route
            method, url, options = request_for(world, operation, resource)
            request_headers = dict(headers)
            if "if_match" in options:
                request_headers["If-Match"] = options["if_match"]
            response = await client.request(
                method, url, json=options.get("json"), headers=request_headers
            )
            cells += 1
            want = expected(actor, operation, resource)
            if response.status_code != want:
                failures.append(
                    f"{actor} | {operation} {resource}: {response.status_code}, expected {want}"
                )
            # Nothing leaks, whatever the status: no private entry to anyone but Alice, and
            # none of Alice's entries to anyone refused or to Bob.
            if actor != "patient A":
                assert CANARY not in response.text, (actor, operation, resource)
                assert not any(i in response.text for i in alice_private), (
                    actor,
                    operation,
                    resource,
                )
            if response.status_code == 412 and actor == "patient A":
                # Her own stale edit or delete: the conflict shows her the entry as it is now.
                assert response.json()["current"]["id"] == world.shared[resource]
            elif response.status_code != 200 or actor == "patient B":
                assert not any(i in response.text for i in alice_all), (actor, operation, resource)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
            if response.status_code == 403 and actor.startswith("therapist,"):
                assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    print(f"authorization matrix: {cells} cells checked, {len(failures)} wrong")
    assert not failures, "\n".join(failures)
    assert cells == len(world.actors) * (len(combos) - 1)


async def test_shared_lists_hold_exactly_the_shared_entries(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await build_world(app, client)
    token = world.actors["therapist, active grant"]
    for resource in RESOURCES:
        listed = await client.get(f"/v1/patients/{world.alice.id}/{resource}", headers=token)
        assert [item["id"] for item in listed.json()["items"]] == [world.shared[resource]]
        own = await client.get(
            f"/v1/{resource}/{world.shared[resource]}", headers=world.alice.headers
        )
        assert listed.json()["items"][0] == own.json()


async def test_private_entries_stay_out_of_the_summary(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    therapist = await register(client, "therapist")
    await client.post("/v1/checkins", json={"mood": 8}, headers=alice.headers)
    await client.post("/v1/checkins", json={"mood": 0, "private": True}, headers=alice.headers)
    await client.post(
        "/v1/assessments",
        json={"instrument": "phq9", "answers": [0] * 8 + [3], "private": True},
        headers=alice.headers,
    )
    token = await mint(client, therapist, (await give_grant(client, alice, therapist))["id"])
    theirs = (await client.get(f"/v1/patients/{alice.id}/summary", headers=bearer(token))).json()
    mine = (await client.get("/v1/me/summary", headers=alice.headers)).json()
    assert theirs["mood"][-1] == {"day": theirs["mood"][-1]["day"], "mean": 8.0, "count": 1}
    assert mine["mood"][-1]["count"] == 2
    assert theirs["safety_flags"] == []
    assert theirs["instruments"] == []
    assert len(mine["safety_flags"]) == 1
    # The therapist's view says it is computed from shared entries only; the patient's does not.
    assert (theirs["shared_only"], mine["shared_only"]) == (True, False)


async def test_a_private_first_session_moves_the_therapists_baseline_and_says_so(
    client: httpx.AsyncClient,
) -> None:
    """The issue's example: with the first dosing session private, the patient and the therapist
    see different baselines; the therapist's summary now says it is from shared entries only."""
    alice = await register(client)
    therapist = await register(client, "therapist")
    start = datetime.now(UTC) - timedelta(days=30)

    async def post(resource: str, body: dict[str, object]) -> None:
        response = await client.post(f"/v1/{resource}", json=body, headers=alice.headers)
        assert response.status_code == 201, response.text

    await post(
        "assessments",
        {
            "instrument": "phq9",
            "answers": [3, 3, 3, 3, 3, 3, 3, 3, 0],
            "completed_at": start.isoformat(),
        },
    )
    await post(
        "sessions",
        {
            "started_at": (start + timedelta(days=1)).isoformat(),
            "route": "im",
            "setting": "clinic",
            "private": True,
        },
    )
    await post(
        "assessments",
        {
            "instrument": "phq9",
            "answers": [2, 2, 2, 2, 2, 2, 0, 0, 0],
            "completed_at": (start + timedelta(days=5)).isoformat(),
        },
    )
    await post(
        "sessions",
        {"started_at": (start + timedelta(days=8)).isoformat(), "route": "im", "setting": "clinic"},
    )
    await post(
        "assessments",
        {
            "instrument": "phq9",
            "answers": [1, 1, 1, 1, 1, 1, 0, 0, 0],
            "completed_at": (start + timedelta(days=20)).isoformat(),
        },
    )
    token = await mint(client, therapist, (await give_grant(client, alice, therapist))["id"])

    (mine,) = (await client.get("/v1/me/summary", headers=alice.headers)).json()["instruments"]
    body = (await client.get(f"/v1/patients/{alice.id}/summary", headers=bearer(token))).json()
    (theirs,) = body["instruments"]
    assert (mine["baseline_total"], mine["response"]) == (24, True)
    assert (theirs["baseline_total"], theirs["response"]) == (12, True)
    assert theirs["baseline_basis"] == mine["baseline_basis"] == "before_first_session"
    assert body["shared_only"] is True


async def test_revocation_is_immediate(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    token = bearer(await mint(client, therapist, grant["id"]))
    url = f"/v1/patients/{patient.id}/checkins"
    assert (await client.get(url, headers=token)).status_code == 200
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    refused = await client.get(url, headers=token)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_expiry_is_exact(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    token = bearer(await mint(client, therapist, grant["id"]))
    url = f"/v1/patients/{patient.id}/summary"
    await expire(app, grant["id"], datetime.now(UTC) + timedelta(minutes=1))
    assert (await client.get(url, headers=token)).status_code == 200
    await expire(app, grant["id"], datetime.now(UTC) - timedelta(milliseconds=1))
    assert (await client.get(url, headers=token)).status_code == 401
    listed = (await client.get(f"/v1/grants/{grant['id']}", headers=patient.headers)).json()
    assert listed["state"] == "expired"


async def test_a_grant_is_over_at_its_exact_expiry_instant(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person, clock: Clock
) -> None:
    # The grant ends within the read token's lifetime, so at that instant the token itself
    # still verifies: only the grant can refuse.
    ends = clock.at + timedelta(minutes=10)
    grant = await give_grant(client, patient, therapist, expires_at=ends.isoformat())
    token = bearer(await mint(client, therapist, grant["id"]))
    url = f"/v1/patients/{patient.id}/checkins"

    clock.set(ends - timedelta(microseconds=1))
    assert (await client.get(url, headers=token)).status_code == 200

    clock.set(ends)
    refused = await client.get(url, headers=token)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The grant behind this token was revoked or has expired."
    async with app.state.sessionmaker() as session:
        audited = (
            await session.execute(
                select(AuditRecord.outcome, AuditRecord.count, AuditRecord.entry_ids)
                .where(AuditRecord.grant_id == uuid.UUID(grant["id"]))
                .order_by(AuditRecord.at)
            )
        ).all()
    # The minting, the read, then the refusal, which read nothing: its record says so.
    assert [tuple(row) for row in audited] == [
        ("allowed", 0, []),
        ("allowed", 0, []),
        ("no_grant", 0, []),
    ]
    minted = await client.post(f"/v1/grants/{grant['id']}/token", headers=therapist.headers)
    assert minted.status_code == 403
    listed = await client.get(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert listed.json()["state"] == "expired"
    assert (await client.get("/v1/patients", headers=therapist.headers)).json()["items"] == []


async def test_read_tokens_work_nowhere_else(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    token = bearer(
        await mint(client, therapist, (await give_grant(client, patient, therapist))["id"])
    )
    for method, url in [
        ("GET", "/v1/me"),
        ("GET", "/v1/grants"),
        ("GET", "/v1/patients"),
        ("GET", "/v1/sync"),
        ("GET", "/v1/me/summary"),
        ("GET", "/v1/me/access-log"),
        ("POST", "/v1/checkins"),
    ]:
        assert (
            await client.request(method, url, headers=token, json={"mood": 1})
        ).status_code == 401, url


async def audit_count(app: FastAPI, patient_id: str) -> int:
    async with app.state.sessionmaker() as session:
        statement = (
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.patient_id == uuid.UUID(patient_id))
        )
        return int(await session.scalar(statement) or 0)


async def test_every_therapist_request_leaves_one_audit_record(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    checkin = (await client.post("/v1/checkins", json={"mood": 4}, headers=patient.headers)).json()
    hidden = (
        await client.post(
            "/v1/checkins", json={"mood": 1, "private": True}, headers=patient.headers
        )
    ).json()
    grant = await give_grant(client, patient, therapist, ["checkins:read"])
    token = bearer(await mint(client, therapist, grant["id"]))
    base = f"/v1/patients/{patient.id}"
    requests = [
        (f"{base}/checkins", 200, "allowed", 1),
        (f"{base}/checkins/{checkin['id']}", 200, "allowed", 1),
        (f"{base}/checkins/{hidden['id']}", 404, "not_found", 0),
        (f"{base}/reflections", 403, "insufficient_scope", 0),
        (f"{base}/summary", 403, "insufficient_scope", 0),
    ]
    before = await audit_count(app, patient.id)
    for url, status, _, _ in requests:
        assert (await client.get(url, headers=token)).status_code == status
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert (await client.get(f"{base}/checkins", headers=token)).status_code == 401
    assert await audit_count(app, patient.id) - before == len(requests) + 1

    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert [entry["outcome"] for entry in log[: len(requests) + 1]] == ["no_grant"] + [
        outcome for _, _, outcome, _ in reversed(requests)
    ]
    newest_allowed = log[len(requests) - 1]
    assert newest_allowed["entry_ids"] == [checkin["id"]]
    assert newest_allowed["therapist_id"] == therapist.id
    assert "viewed 1 of your mood check-ins" in log[len(requests)]["description"]
    assert "refused" in log[0]["description"]
    # Before any read, minting the token opened the journal: that is in the log too.
    assert (log[len(requests) + 1]["resource"], log[len(requests) + 1]["action"]) == (
        "grant",
        "open",
    )
    assert all(entry["request_id"] for entry in log)


async def test_requests_without_a_valid_token_are_not_attributed(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    before = await audit_count(app, patient.id)
    for headers in ({}, {"Authorization": "Bearer nonsense"}, patient.headers):
        assert (
            await client.get(f"/v1/patients/{patient.id}/checkins", headers=headers)
        ).status_code == 401
    assert await audit_count(app, patient.id) == before


async def test_the_access_log_is_the_patients_own(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    other = await register(client)
    token = bearer(
        await mint(client, therapist, (await give_grant(client, patient, therapist))["id"])
    )
    await client.get(f"/v1/patients/{patient.id}/checkins", headers=token)
    assert (await client.get("/v1/me/access-log", headers=other.headers)).json()["items"] == []
    assert (await client.get("/v1/me/access-log", headers=therapist.headers)).status_code == 403
    own = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert [(entry["resource"], entry["action"]) for entry in own] == [
        ("checkins", "list"),
        ("grant", "open"),
    ]


async def test_opening_a_journal_and_listing_patients_are_in_the_access_log(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    listed = await client.get("/v1/patients", headers=therapist.headers)
    assert [p["patient_id"] for p in listed.json()["items"]] == [patient.id]
    await mint(client, therapist, grant["id"])
    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert [(e["resource"], e["action"], e["grant_id"], e["therapist_id"]) for e in log] == [
        ("grant", "open", grant["id"], therapist.id),
        ("patients", "list", grant["id"], therapist.id),
    ]
    assert log[0]["description"] == "Test therapist opened your journal to read what you shared."
    assert log[1]["description"] == "Test therapist saw you in their list of patients."


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_records SET count = 99", "DELETE FROM audit_records"]
)
async def test_the_database_refuses_to_change_the_audit_trail(app: FastAPI, statement: str) -> None:
    assert SERVER_URL.startswith("postgresql")
    async with app.state.engine.connect() as connection:
        with pytest.raises(Exception, match="append-only"):
            await connection.execute(text(statement))
        await connection.rollback()


async def test_links_to_private_entries_are_dropped_for_the_therapist(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    hidden_session = (
        await client.post(
            "/v1/sessions", json=body("sessions", private=True), headers=patient.headers
        )
    ).json()
    shown_intention = (
        await client.post("/v1/intentions", json=body("intentions"), headers=patient.headers)
    ).json()
    hidden_intention = (
        await client.post(
            "/v1/intentions", json=body("intentions", private=True), headers=patient.headers
        )
    ).json()
    reflection = (
        await client.post(
            "/v1/reflections",
            json=body(
                "reflections",
                session_id=hidden_session["id"],
                intention_ids=[shown_intention["id"], hidden_intention["id"]],
            ),
            headers=patient.headers,
        )
    ).json()
    token = bearer(
        await mint(client, therapist, (await give_grant(client, patient, therapist))["id"])
    )
    listed = (await client.get(f"/v1/patients/{patient.id}/reflections", headers=token)).json()[
        "items"
    ]
    one = (
        await client.get(f"/v1/patients/{patient.id}/reflections/{reflection['id']}", headers=token)
    ).json()
    for shown in (listed[0], one):
        assert shown["session_id"] is None
        assert shown["intention_ids"] == [shown_intention["id"]]
    # The patient's own copy keeps every link.
    own = (await client.get(f"/v1/reflections/{reflection['id']}", headers=patient.headers)).json()
    assert own["intention_ids"] == [shown_intention["id"], hidden_intention["id"]]
    assert own["session_id"] == hidden_session["id"]


async def test_a_session_filter_on_a_session_the_reader_cannot_see_matches_nothing(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    shown_session = (
        await client.post("/v1/sessions", json=body("sessions"), headers=patient.headers)
    ).json()
    hidden_session = (
        await client.post(
            "/v1/sessions", json=body("sessions", private=True), headers=patient.headers
        )
    ).json()
    for session in (shown_session, hidden_session):
        for resource in ("reflections", "intentions"):
            made = await client.post(
                f"/v1/{resource}",
                json=body(resource, session_id=session["id"]),
                headers=patient.headers,
            )
            assert made.status_code == 201, made.text
    grant = await give_grant(client, patient, therapist)
    everything = bearer(await mint(client, therapist, grant["id"]))
    without_sessions = bearer(
        await mint(client, therapist, grant["id"], "reflections:read intentions:read")
    )

    async def filtered(resource: str, session_id: str, token: dict[str, str]) -> list[Any]:
        response = await client.get(
            f"/v1/patients/{patient.id}/{resource}",
            params={"session_id": session_id},
            headers=token,
        )
        assert response.status_code == 200, response.text
        items: list[Any] = response.json()["items"]
        return items

    for resource in ("reflections", "intentions"):
        missing = await filtered(resource, str(uuid.uuid4()), everything)
        assert missing == []
        # A private session's id answers as a missing one: nothing linked to it shows through.
        assert await filtered(resource, hidden_session["id"], everything) == missing
        # So does a session the token may not read, even a shared one.
        assert await filtered(resource, shown_session["id"], without_sessions) == missing
        # A session the token may read filters as the patient's own list does.
        [linked] = await filtered(resource, shown_session["id"], everything)
        assert linked["session_id"] == shown_session["id"]


async def test_links_to_kinds_the_token_cannot_read_are_left_out(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    session = (
        await client.post("/v1/sessions", json=body("sessions"), headers=patient.headers)
    ).json()
    intention = (
        await client.post(
            "/v1/intentions",
            json=body("intentions", session_id=session["id"]),
            headers=patient.headers,
        )
    ).json()
    reflection = (
        await client.post(
            "/v1/reflections",
            json=body("reflections", session_id=session["id"], intention_ids=[intention["id"]]),
            headers=patient.headers,
        )
    ).json()
    grant = await give_grant(client, patient, therapist)
    only_reflections = bearer(await mint(client, therapist, grant["id"], "reflections:read"))
    everything = bearer(await mint(client, therapist, grant["id"]))
    path = f"/v1/patients/{patient.id}/reflections"
    for token, session_id, intention_ids in (
        (only_reflections, None, []),
        (everything, session["id"], [intention["id"]]),
    ):
        listed = (await client.get(path, headers=token)).json()["items"]
        one = (await client.get(f"{path}/{reflection['id']}", headers=token)).json()
        for shown in (listed[0], one):
            assert shown["id"] == reflection["id"]
            assert shown["session_id"] == session_id
            assert shown["intention_ids"] == intention_ids
