"""Safety flags as records: raised on receipt by every way in, open until a therapist acknowledges
them, never expiring; shown in both summaries, both lists and the therapist's page; private stays
private; acknowledgement audited, refused when it may not happen, and answered once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from api.models import AuditRecord, SafetyFlag
from api.web.local_time import ago
from tests.support.browser import csrf_of, web_sign_in
from tests.support.clock import Clock
from tests.support.conformance import conforming_client
from tests.support.journal import Json, assert_problem, iso, now, phq9
from tests.support.people import Person, register
from tests.support.sharing import bearer, give_grant, mint

FLAGGED = phq9(14, item9=2)


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of its own: its own cookie jar, redirects not followed."""
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as http:
        yield http


async def flagged_phq9(
    client: httpx.AsyncClient,
    patient: Person,
    days_ago: float = 0,
    answers: list[int] | None = None,
    **fields: Any,
) -> Json:
    body = {
        "instrument": "phq9",
        "answers": answers or FLAGGED,
        "completed_at": iso(now() - timedelta(days=days_ago)),
        **fields,
    }
    response = await client.post("/v1/assessments", json=body, headers=patient.headers)
    assert response.status_code == 201, response.text
    entry: Json = response.json()
    return entry


async def my_flags(client: httpx.AsyncClient, patient: Person) -> list[Json]:
    response = await client.get("/v1/me/safety-flags", headers=patient.headers)
    assert response.status_code == 200, response.text
    items: list[Json] = response.json()["items"]
    return items


async def their_flags(client: httpx.AsyncClient, patient: Person, token: str) -> httpx.Response:
    return await client.get(f"/v1/patients/{patient.id}/safety-flags", headers=bearer(token))


async def acknowledge(
    client: httpx.AsyncClient, patient_id: str, flag_id: str, token: str, note: str | None = None
) -> httpx.Response:
    return await client.post(
        f"/v1/patients/{patient_id}/safety-flags/{flag_id}/acknowledgement",
        json={} if note is None else {"note": note},
        headers=bearer(token),
    )


async def read_token(
    client: httpx.AsyncClient, patient: Person, therapist: Person, scopes: list[str] | None = None
) -> tuple[Json, str]:
    grant = await give_grant(client, patient, therapist, scopes)
    return grant, await mint(client, therapist, grant["id"])


async def stored_flags(app: FastAPI, patient_id: str) -> list[SafetyFlag]:
    async with app.state.sessionmaker() as session:
        statement = select(SafetyFlag).where(SafetyFlag.owner_id == uuid.UUID(patient_id))
        return list((await session.scalars(statement)).all())


async def audit_of(app: FastAPI, patient_id: str) -> list[AuditRecord]:
    async with app.state.sessionmaker() as session:
        statement = (
            select(AuditRecord)
            .where(AuditRecord.patient_id == uuid.UUID(patient_id))
            .order_by(AuditRecord.at, AuditRecord.id)
        )
        return list((await session.scalars(statement)).all())


# --- raised on receipt ---------------------------------------------------------------------------


async def test_a_flag_20_days_back_dated_is_open_everywhere(
    app: FastAPI,
    client: httpx.AsyncClient,
    patient: Person,
    therapist: Person,
    web: httpx.AsyncClient,
) -> None:
    """The issue's first finding: such a PHQ-9 was flagged in the POST answer and then never
    shown. Now it is open in both summaries, both lists and the therapist's page."""
    _grant, token = await read_token(client, patient, therapist)
    entry = await flagged_phq9(client, patient, days_ago=20)

    assert entry["safety_flag"] is True
    assert entry["crisis_resources"]
    notice = entry["raised_flag"]
    assert (notice["state"], notice["visible_to_therapist"]) == ("open", True)

    (mine,) = await my_flags(client, patient)
    assert (mine["id"], mine["assessment_id"], mine["state"]) == (notice["id"], entry["id"], "open")
    assert (mine["item_value"], mine["total"], mine["visible_to_therapist"]) == (2, 14, True)
    assert mine["completed_at"] == entry["completed_at"]
    # Received now, completed 20 days before.
    received = datetime.fromisoformat(mine["received_at"])
    assert received - datetime.fromisoformat(mine["completed_at"]) > timedelta(days=19)

    response = await their_flags(client, patient, token)
    assert response.status_code == 200, response.text
    assert [f["id"] for f in response.json()["items"]] == [notice["id"]]
    assert response.json()["items"][0]["visible_to_therapist"] is None

    own = (await client.get("/v1/me/summary", headers=patient.headers)).json()
    theirs = (await client.get(f"/v1/patients/{patient.id}/summary", headers=bearer(token))).json()
    for body in (own, theirs):
        assert [(f["id"], f["state"]) for f in body["safety_flags"]] == [(notice["id"], "open")]
        assert body["crisis_resources"]

    assert (await web_sign_in(web, therapist.email)).status_code == 303
    html = (await web.get(f"/therapist/patients/{patient.id}")).text
    assert "Safety flag, 1 open" in html
    assert f"/safety-flags/{notice['id']}/acknowledge" in html
    assert "Acknowledge</button>" in html


async def test_a_later_phq9_without_item_9_does_not_close_the_flag(
    client: httpx.AsyncClient, patient: Person
) -> None:
    flagged = await flagged_phq9(client, patient, days_ago=3)
    calm = await flagged_phq9(client, patient, days_ago=1, answers=phq9(4))
    assert calm["raised_flag"] is None
    (flag,) = await my_flags(client, patient)
    assert (flag["assessment_id"], flag["state"]) == (flagged["id"], "open")
    assert flag["latest_phq9"] == {
        "assessment_id": calm["id"],
        "total": 4,
        "item_value": 0,
        "completed_at": calm["completed_at"],
    }


async def test_other_questionnaires_raise_no_flag(
    client: httpx.AsyncClient, patient: Person
) -> None:
    await flagged_phq9(client, patient, answers=phq9(20))
    await client.post(
        "/v1/assessments", json={"instrument": "gad7", "answers": [3] * 7}, headers=patient.headers
    )
    assert await my_flags(client, patient) == []


async def test_a_resend_raises_no_second_flag(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    entry_id = str(uuid.uuid4())
    body = {"id": entry_id, "instrument": "phq9", "answers": FLAGGED}
    headers = {**patient.headers, "Idempotency-Key": "flag-once"}
    first = await client.post("/v1/assessments", json=body, headers=headers)
    again = await client.post("/v1/assessments", json=body, headers=headers)
    same_id = await client.post("/v1/assessments", json=body, headers=patient.headers)
    assert first.status_code == again.status_code == same_id.status_code == 201
    assert again.json()["raised_flag"] == first.json()["raised_flag"]
    assert same_id.json()["raised_flag"]["id"] == first.json()["raised_flag"]["id"]
    assert len(await stored_flags(app, patient.id)) == 1


async def test_a_sync_pushed_flag_raises_one_flag_and_its_replay_none(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    entry_id = str(uuid.uuid4())
    operation = {
        "op": "create",
        "resource": "assessments",
        "id": entry_id,
        "data": {
            "instrument": "phq9",
            "answers": FLAGGED,
            "completed_at": iso(now() - timedelta(days=20)),
        },
    }

    async def push(key: str) -> None:
        response = await client.post(
            "/v1/sync",
            json={"operations": [operation]},
            headers={**patient.headers, "Idempotency-Key": key},
        )
        assert response.status_code == 200, response.text

    await push("batch-1")
    await push("batch-1")  # the same batch again: the stored answer
    await push("batch-2")  # the same create in a new batch: a replay of the entry
    flags = await stored_flags(app, patient.id)
    assert [(str(f.assessment_id), f.item_value) for f in flags] == [(entry_id, 2)]
    assert flags[0].acknowledged_at is None


# --- what the patient's answer says --------------------------------------------------------------


async def test_the_answer_says_whether_any_therapist_can_see_the_flag(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    alone = await flagged_phq9(client, patient)
    assert alone["raised_flag"]["visible_to_therapist"] is False  # no grant at all
    await give_grant(client, patient, therapist, ["checkins:read"])
    still_alone = await flagged_phq9(client, patient)
    assert still_alone["raised_flag"]["visible_to_therapist"] is False  # no scope that shows it
    await give_grant(client, patient, therapist, ["summary:read"])
    seen = await flagged_phq9(client, patient)
    assert seen["raised_flag"]["visible_to_therapist"] is True
    private = await flagged_phq9(client, patient, private=True)
    assert private["raised_flag"]["visible_to_therapist"] is False
    for entry in (alone, still_alone, seen, private):
        assert entry["crisis_resources"]
    visible = {
        f["assessment_id"]: f["visible_to_therapist"] for f in await my_flags(client, patient)
    }
    assert visible == {
        alone["id"]: True,
        still_alone["id"]: True,
        seen["id"]: True,
        private["id"]: False,
    }


async def test_a_private_flag_does_not_exist_for_a_therapist(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    _grant, token = await read_token(client, patient, therapist)
    private = await flagged_phq9(client, patient, private=True)
    flag_id = private["raised_flag"]["id"]

    assert (await their_flags(client, patient, token)).json()["items"] == []
    summary = (await client.get(f"/v1/patients/{patient.id}/summary", headers=bearer(token))).json()
    assert summary["safety_flags"] == []
    assert summary["crisis_resources"] == []
    patients = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert [p["open_safety_flags"] for p in patients] == [0]
    assert_problem(await acknowledge(client, patient.id, flag_id, token), 404)
    (flag,) = await stored_flags(app, patient.id)
    assert flag.acknowledged_at is None
    # The patient still sees it, and can tell nobody else does.
    (mine,) = await my_flags(client, patient)
    assert (mine["state"], mine["visible_to_therapist"]) == ("open", False)


# --- acknowledgement -----------------------------------------------------------------------------


async def test_acknowledging_closes_the_flag_once_and_tells_the_patient(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    therapist = await register(client, "therapist", "Dr. Okafor")
    grant, token = await read_token(client, patient, therapist, ["assessments:read"])
    entry = await flagged_phq9(client, patient, days_ago=20)
    flag_id = entry["raised_flag"]["id"]

    first = await acknowledge(client, patient.id, flag_id, token, note="Called; safety plan ok")
    assert first.status_code == 200, first.text
    done = first.json()
    assert (done["state"], done["acknowledged_by"], done["acknowledged_by_name"]) == (
        "acknowledged",
        therapist.id,
        "Dr. Okafor",
    )
    assert done["note"] == "Called; safety plan ok"
    # Again, with another note: the first acknowledgement stands, unchanged.
    again = await acknowledge(client, patient.id, flag_id, token, note="Second thoughts")
    assert again.status_code == 200
    assert again.json() == done

    (mine,) = await my_flags(client, patient)
    assert {k: mine[k] for k in ("state", "acknowledged_at", "acknowledged_by_name", "note")} == {
        k: done[k] for k in ("state", "acknowledged_at", "acknowledged_by_name", "note")
    }
    # The note is stored encrypted, bound to its row.
    (stored,) = await stored_flags(app, patient.id)
    assert stored.note is not None
    assert "safety plan" not in stored.note
    assert stored.acknowledged_grant_id == uuid.UUID(grant["id"])

    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    acknowledged = [e for e in log if e["action"] == "acknowledge"]
    assert len(acknowledged) == 2
    assert all(e["entry_ids"] == [flag_id] for e in acknowledged)
    assert acknowledged[0]["description"] == (
        "Dr. Okafor acknowledged one of your safety flags: they have seen it."
    )

    # The patient's export carries the flag with its acknowledgement.
    export = (await client.get("/v1/me/export", headers=patient.headers)).json()
    assert [(f["id"], f["note"]) for f in export["safety_flags"]] == [
        (flag_id, "Called; safety plan ok")
    ]

    # Acknowledged: still in the summary (for 30 days), no longer open anywhere.
    body = (await client.get("/v1/me/summary", headers=patient.headers)).json()
    assert [f["state"] for f in body["safety_flags"]] == ["acknowledged"]
    patients = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert patients[0]["open_safety_flags"] == 0


async def test_acknowledged_flags_leave_the_summary_after_30_days(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    _grant, token = await read_token(client, patient, therapist)
    old = await flagged_phq9(client, patient, days_ago=60)
    recent = await flagged_phq9(client, patient, days_ago=40)
    for entry in (old, recent):
        response = await acknowledge(client, patient.id, entry["raised_flag"]["id"], token)
        assert response.status_code == 200
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(SafetyFlag)
            .where(SafetyFlag.id == uuid.UUID(old["raised_flag"]["id"]))
            .values(acknowledged_at=datetime.now(UTC) - timedelta(days=31))
        )
        await session.commit()
    body = (await client.get("/v1/me/summary", headers=patient.headers)).json()
    assert [f["assessment_id"] for f in body["safety_flags"]] == [recent["id"]]
    assert body["crisis_resources"]  # shown with any flag in the summary
    # The lists keep every flag.
    assert len(await my_flags(client, patient)) == 2
    assert len((await their_flags(client, patient, token)).json()["items"]) == 2


@pytest.mark.parametrize("case", ["no_scope", "revoked", "other_patient", "unknown_flag"])
async def test_an_acknowledgement_that_may_not_happen_is_refused_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person, case: str
) -> None:
    entry = await flagged_phq9(client, patient, days_ago=2)
    flag_id = entry["raised_flag"]["id"]
    path_patient = patient.id
    if case == "no_scope":
        _grant, token = await read_token(client, patient, therapist, ["checkins:read"])
        expected = 403
    elif case == "revoked":
        grant, token = await read_token(client, patient, therapist)
        assert (
            await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
        ).status_code == 204
        expected = 401
    elif case == "other_patient":
        # A token for another patient, who shared everything: this patient's flag is not theirs.
        other = await register(client, "patient")
        _grant, token = await read_token(client, other, therapist)
        await flagged_phq9(client, other)
        path_patient = other.id
        expected = 404
    else:
        _grant, token = await read_token(client, patient, therapist)
        flag_id = str(uuid.uuid4())
        expected = 404

    response = await acknowledge(client, path_patient, flag_id, token, note="should not stick")
    assert_problem(response, expected)
    flags = await stored_flags(app, patient.id)
    assert [(f.acknowledged_at, f.acknowledged_by, f.note) for f in flags] == [(None, None, None)]
    # The refusal is recorded, as any refused read is.
    records = await audit_of(app, path_patient)
    assert [(r.resource, r.action, r.outcome) for r in records][-1] == (
        "safety_flags",
        "acknowledge",
        {401: "no_grant", 403: "insufficient_scope", 404: "not_found"}[expected],
    )


async def test_a_note_that_is_too_long_is_refused(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    _grant, token = await read_token(client, patient, therapist)
    entry = await flagged_phq9(client, patient)
    response = await acknowledge(client, patient.id, entry["raised_flag"]["id"], token, "x" * 501)
    assert_problem(response, 422)
    (flag,) = await stored_flags(app, patient.id)
    assert flag.acknowledged_at is None


async def test_listing_needs_either_flag_scope_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    entry = await flagged_phq9(client, patient)
    _grant, checkins_only = await read_token(client, patient, therapist, ["checkins:read"])
    assert_problem(await their_flags(client, patient, checkins_only), 403)
    for scope in ("assessments:read", "summary:read"):
        _grant, token = await read_token(client, patient, therapist, [scope])
        response = await their_flags(client, patient, token)
        assert response.status_code == 200, response.text
        assert [f["assessment_id"] for f in response.json()["items"]] == [entry["id"]]
    allowed = [r for r in await audit_of(app, patient.id) if r.outcome == "allowed"]
    # Each read token's minting is recorded too ("opened your journal"), then each list.
    assert [(r.resource, r.action, r.entry_ids) for r in allowed] == [
        ("grant", "open", []),
        ("grant", "open", []),
        ("safety_flags", "list", [entry["raised_flag"]["id"]]),
        ("grant", "open", []),
        ("safety_flags", "list", [entry["raised_flag"]["id"]]),
    ]


# --- deletion -----------------------------------------------------------------------------------


async def test_deleting_the_questionnaire_removes_its_flag_and_keeps_the_audit(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    _grant, token = await read_token(client, patient, therapist)
    entry = await flagged_phq9(client, patient)
    assert (
        await acknowledge(client, patient.id, entry["raised_flag"]["id"], token)
    ).status_code == 200
    cursor = (await client.get("/v1/sync?cursor=0", headers=patient.headers)).json()["next_cursor"]

    deleted = await client.delete(
        f"/v1/assessments/{entry['id']}", headers={**patient.headers, "If-Match": '"1"'}
    )
    assert deleted.status_code == 204
    assert await stored_flags(app, patient.id) == []
    assert await my_flags(client, patient) == []
    changes = (await client.get(f"/v1/sync?cursor={cursor}", headers=patient.headers)).json()
    assert changes["deleted"]["assessments"] == [entry["id"]]
    assert [r.action for r in await audit_of(app, patient.id)] == ["open", "acknowledge"]


# --- the therapist's list of patients ------------------------------------------------------------


async def test_patients_with_open_flags_come_first_with_their_count(
    client: httpx.AsyncClient, therapist: Person, web: httpx.AsyncClient
) -> None:
    calm = await register(client, "patient", "Aaron Calm")
    flagged = await register(client, "patient", "Zoe Flagged")
    unseen = await register(client, "patient", "Mia Checkins")
    await give_grant(client, calm, therapist)
    await give_grant(client, flagged, therapist, ["summary:read"])
    await give_grant(client, unseen, therapist, ["checkins:read"])
    for _ in range(2):
        await flagged_phq9(client, flagged, days_ago=30)
    await flagged_phq9(client, flagged, private=True)  # not counted
    await flagged_phq9(client, unseen)  # not shown to this therapist at all

    items = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert [(p["display_name"], p["open_safety_flags"]) for p in items] == [
        ("Zoe Flagged", 2),
        ("Aaron Calm", 0),
        ("Mia Checkins", None),
    ]

    assert (await web_sign_in(web, therapist.email)).status_code == 303
    html = (await web.get("/therapist/")).text
    assert html.index("Zoe Flagged") < html.index("Aaron Calm") < html.index("Mia Checkins")
    assert "2 open" in html


async def test_the_web_list_says_how_long_flags_wait_and_titles_count_them(
    client: httpx.AsyncClient, therapist: Person, web: httpx.AsyncClient, clock: Clock
) -> None:
    """Flags show before a patient is opened: a badge with how long the oldest open one has
    waited, and the count in the list's and the patient's page titles."""
    flagged = await register(client, "patient", "Zoe Waiting")
    await give_grant(client, flagged, therapist, ["summary:read"])
    await flagged_phq9(client, flagged)
    await flagged_phq9(client, flagged)
    clock.move(timedelta(days=3, hours=6))  # the flags have waited 3 days and 6 hours

    assert (await web_sign_in(web, therapist.email)).status_code == 303
    listing = (await web.get("/therapist/")).text
    assert "<title>2 open safety flags, Your patients" in listing
    assert "2 open</span>, the oldest" in listing
    assert "received 3 days ago</time>" in listing
    page = (await web.get(f"/therapist/patients/{flagged.id}")).text
    assert "<title>2 open safety flags, Zoe Waiting" in page


def test_how_long_ago_is_said_in_whole_units_rounded_down() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    cases = {
        timedelta(0): "just now",
        timedelta(seconds=59): "just now",
        timedelta(minutes=1): "1 minute ago",
        timedelta(minutes=59, seconds=59): "59 minutes ago",
        timedelta(hours=1): "1 hour ago",
        timedelta(hours=23, minutes=59): "23 hours ago",
        timedelta(days=1): "1 day ago",
        timedelta(days=20, hours=23): "20 days ago",
        -timedelta(minutes=5): "just now",  # a clock a little ahead says nothing odd
    }
    for before, said in cases.items():
        assert ago(now - before, now) == said, before


# --- the web page's Acknowledge form -------------------------------------------------------------


async def test_the_acknowledge_form_needs_its_csrf_token_and_then_closes_the_flag(
    app: FastAPI,
    client: httpx.AsyncClient,
    patient: Person,
    therapist: Person,
    web: httpx.AsyncClient,
) -> None:
    await give_grant(client, patient, therapist, ["assessments:read"])
    entry = await flagged_phq9(client, patient, days_ago=20)
    flag_id = entry["raised_flag"]["id"]
    assert (await web_sign_in(web, therapist.email)).status_code == 303
    page = await web.get(f"/therapist/patients/{patient.id}")
    action = f"/therapist/patients/{patient.id}/safety-flags/{flag_id}/acknowledge"

    forged = await web.post(action, data={"csrf_token": "forged", "note": "x"})
    assert forged.status_code == 403
    missing = await web.post(action, data={"note": "x"})
    assert missing.status_code == 403
    (flag,) = await stored_flags(app, patient.id)
    assert flag.acknowledged_at is None

    done = await web.post(action, data={"csrf_token": csrf_of(page.text), "note": "Seen, called"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/therapist/patients/{patient.id}#safety"
    (flag,) = await stored_flags(app, patient.id)
    assert (flag.acknowledged_by, flag.acknowledged_at is not None) == (
        uuid.UUID(therapist.id),
        True,
    )
    (mine,) = await my_flags(client, patient)
    assert (mine["state"], mine["note"]) == ("acknowledged", "Seen, called")

    html = (await web.get(f"/therapist/patients/{patient.id}")).text
    assert "No open safety flags." in html
    assert "Safety flags acknowledged in the last 30 days" in html
    assert "Seen, called" in html
    records = await audit_of(app, patient.id)
    assert ("safety_flags", "acknowledge", [flag_id]) in [
        (r.resource, r.action, r.entry_ids) for r in records
    ]


async def test_the_acknowledge_form_through_an_ended_grant_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    patient: Person,
    therapist: Person,
    web: httpx.AsyncClient,
) -> None:
    grant = await give_grant(client, patient, therapist, ["summary:read"])
    entry = await flagged_phq9(client, patient)
    assert (await web_sign_in(web, therapist.email)).status_code == 303
    page = await web.get(f"/therapist/patients/{patient.id}")
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    response = await web.post(
        f"/therapist/patients/{patient.id}/safety-flags/{entry['raised_flag']['id']}/acknowledge",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 403
    assert "Access has ended" in response.text
    (flag,) = await stored_flags(app, patient.id)
    assert flag.acknowledged_at is None
    async with app.state.sessionmaker() as session:
        refused = await session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "acknowledge", AuditRecord.outcome == "no_grant")
            .where(AuditRecord.patient_id == uuid.UUID(patient.id))
        )
    assert refused == 1
