"""The patient's journal: every resource created, read, listed, edited and deleted as documented."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.journal.repository import EntryRepository, Scope
from api.journal.service import ID_TAKEN
from api.models import Checkin
from tests.support.entries import EDIT, EDITABLE, RESOURCES, body, iso
from tests.support.journal import list_ids
from tests.support.people import Person, register


async def create(
    client: httpx.AsyncClient, person: Person, resource: str, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/{resource}", json=body(resource, **overrides), headers=person.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def count(client: httpx.AsyncClient, person: Person, resource: str) -> int:
    response = await client.get(f"/v1/{resource}", params={"limit": 200}, headers=person.headers)
    assert response.status_code == 200
    return len(response.json()["items"])


@pytest.mark.parametrize("resource", RESOURCES)
async def test_create_read_list_delete(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    response = await client.post(f"/v1/{resource}", json=body(resource), headers=patient.headers)
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/v1/{resource}/{created['id']}"
    assert response.headers["etag"] == '"1"'
    assert created["private"] is False
    assert created["version"] == 1
    for field, value in body(resource).items():
        if field.endswith("_at"):
            continue
        assert created[field] == value, field

    one = await client.get(f"/v1/{resource}/{created['id']}", headers=patient.headers)
    assert one.status_code == 200
    assert one.json() == created
    assert one.headers["etag"] == '"1"'

    listed = await client.get(f"/v1/{resource}", headers=patient.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert listed.json()["next_cursor"] is None

    gone = await client.delete(
        f"/v1/{resource}/{created['id']}", headers={**patient.headers, "If-Match": '"1"'}
    )
    assert gone.status_code == 204
    assert (
        await client.get(f"/v1/{resource}/{created['id']}", headers=patient.headers)
    ).status_code == 404
    assert await count(client, patient, resource) == 0


@pytest.mark.parametrize("resource", EDITABLE)
async def test_patch_needs_if_match_and_refuses_stale(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    created = await create(client, patient, resource)
    url = f"/v1/{resource}/{created['id']}"
    assert (
        await client.patch(url, json=EDIT[resource], headers=patient.headers)
    ).status_code == 428
    edited = await client.patch(
        url, json=EDIT[resource], headers={**patient.headers, "If-Match": '"1"'}
    )
    assert edited.status_code == 200
    assert edited.headers["etag"] == '"2"'
    for field, value in EDIT[resource].items():
        assert edited.json()[field] == value
    stale = await client.patch(
        url, json={"private": True}, headers={**patient.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await client.get(url, headers=patient.headers)).json() == edited.json()


async def test_a_second_edit_from_the_same_version_is_refused_by_the_repository(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    # Two requests that both read version 1 and passed If-Match reach the UPDATE one after the
    # other: the version condition in the statement is what refuses the second, on any database
    # (PostgreSQL's concurrent case is in test_concurrency_pg.py).
    checkin = await create(client, patient, "checkins", mood=5)
    async with app.state.sessionmaker() as session:
        repository = EntryRepository(session, Checkin, Scope.own(uuid.UUID(patient.id)))
        entry = await repository.get(uuid.UUID(checkin["id"]))
        assert entry is not None
        assert entry.version == 1
        first = await repository.update(entry, 1, {"mood": 2})
        assert first is not None
        assert first.version == 2
        assert await repository.update(entry, 1, {"mood": 9}) is None
        await session.commit()
    stored = await client.get(f"/v1/checkins/{checkin['id']}", headers=patient.headers)
    assert (stored.json()["mood"], stored.json()["version"]) == (2, 2)


@pytest.mark.parametrize("resource", RESOURCES)
async def test_delete_needs_if_match_and_refuses_stale(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    created = await create(client, patient, resource)
    url = f"/v1/{resource}/{created['id']}"
    assert (await client.delete(url, headers=patient.headers)).status_code == 428
    assert (
        await client.delete(url, headers={**patient.headers, "If-Match": '"7"'})
    ).status_code == 412
    assert (await client.get(url, headers=patient.headers)).status_code == 200


async def test_assessments_cannot_be_edited(client: httpx.AsyncClient, patient: Person) -> None:
    created = await create(client, patient, "assessments")
    response = await client.patch(
        f"/v1/assessments/{created['id']}",
        json={"answers": [0] * 7},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("resource", EDITABLE)
async def test_patch_can_clear_optional_fields_but_not_required_ones(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    required = {
        "sessions": "route",
        "intentions": "text",
        "reflections": "text",
        "checkins": "mood",
    }[resource]
    created = await create(client, patient, resource)
    url = f"/v1/{resource}/{created['id']}"
    refused = await client.patch(
        url, json={required: None}, headers={**patient.headers, "If-Match": '"1"'}
    )
    assert refused.status_code == 422
    assert (await client.get(url, headers=patient.headers)).json()[required] == created[required]


async def test_patch_clears_an_optional_field(client: httpx.AsyncClient, patient: Person) -> None:
    created = await create(client, patient, "checkins")
    response = await client.patch(
        f"/v1/checkins/{created['id']}",
        json={"note": None, "anxiety": None},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200
    assert (response.json()["note"], response.json()["anxiety"], response.json()["mood"]) == (
        None,
        None,
        6,
    )


# --- client ids and idempotency ---------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
async def test_client_id_replay_and_conflict(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    entry_id = str(uuid.uuid4())
    sent = body(resource, id=entry_id)
    first = await client.post(f"/v1/{resource}", json=sent, headers=patient.headers)
    assert first.status_code == 201
    assert first.json()["id"] == entry_id
    again = await client.post(f"/v1/{resource}", json=sent, headers=patient.headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    changed = {**sent, "private": True}
    assert (
        await client.post(f"/v1/{resource}", json=changed, headers=patient.headers)
    ).status_code == 409
    assert await count(client, patient, resource) == 1


async def test_a_deleted_id_cannot_be_created_again(
    client: httpx.AsyncClient, patient: Person
) -> None:
    created = await create(client, patient, "checkins")
    await client.delete(
        f"/v1/checkins/{created['id']}", headers={**patient.headers, "If-Match": '"1"'}
    )
    again = await client.post(
        "/v1/checkins", json=body("checkins", id=created["id"]), headers=patient.headers
    )
    assert again.status_code == 409
    assert await count(client, patient, "checkins") == 0


@pytest.mark.parametrize("resource", RESOURCES)
async def test_idempotency_key_replays_and_refuses_another_body(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    headers = {**patient.headers, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    sent = body(resource)
    first = await client.post(f"/v1/{resource}", json=sent, headers=headers)
    second = await client.post(f"/v1/{resource}", json=sent, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    other = await client.post(f"/v1/{resource}", json={**sent, "private": True}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in other.json()["errors"]] == [["header", "idempotency-key"]]
    assert await count(client, patient, resource) == 1


async def test_idempotency_keys_are_per_patient(client: httpx.AsyncClient, patient: Person) -> None:
    from tests.support.people import register

    other = await register(client)
    key = f"shared-{uuid.uuid4()}"
    mine = await client.post(
        "/v1/checkins",
        json=body("checkins"),
        headers=[(k.encode(), v.encode()) for k, v in patient.headers.items()]
        + [(b"Idempotency-Key", key if isinstance(key, bytes) else key.encode())],
    )
    theirs = await client.post(
        "/v1/checkins",
        json=body("checkins", mood=1),
        headers={**other.headers, "Idempotency-Key": key},
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["mood"] == 1


async def test_each_of_a_patients_keys_replays_its_own_answer(
    client: httpx.AsyncClient, patient: Person
) -> None:
    sent = {f"key-{n}-{uuid.uuid4()}": body("checkins", mood=n) for n in (1, 2, 3)}
    first = {
        key: await client.post(
            "/v1/checkins", json=b, headers={**patient.headers, "Idempotency-Key": key}
        )
        for key, b in sent.items()
    }
    for key, b in reversed(sent.items()):
        again = await client.post(
            "/v1/checkins", json=b, headers={**patient.headers, "Idempotency-Key": key}
        )
        assert again.status_code == 201, again.text
        assert again.content == first[key].content
    assert await count(client, patient, "checkins") == 3


async def test_two_patients_with_one_idempotency_key_each_get_their_own_answer(
    client: httpx.AsyncClient, patient: Person
) -> None:
    other = await register(client)
    key = f"shared-{uuid.uuid4()}"
    sent = body("checkins", id=str(uuid.uuid4()), mood=3)

    def with_key(person: Person) -> dict[str, str]:
        return {**person.headers, "Idempotency-Key": key}

    mine = await client.post("/v1/checkins", json=sent, headers=with_key(patient))
    assert mine.status_code == 201
    # The other patient sends the very same request, key and client id included: the id is
    # taken, and that is the answer; the first patient's stored answer is not theirs to get.
    theirs = await client.post("/v1/checkins", json=sent, headers=with_key(other))
    assert theirs.status_code == 409
    assert theirs.json()["detail"] == ID_TAKEN
    assert "idempotent-replayed" not in theirs.headers
    # Under the same key, a request of their own is theirs, and so is its replay.
    own_body = body("checkins", mood=8)
    own = await client.post("/v1/checkins", json=own_body, headers=with_key(other))
    assert own.status_code == 201
    own_again = await client.post("/v1/checkins", json=own_body, headers=with_key(other))
    assert own_again.status_code == 201, own_again.text
    assert own_again.content == own.content
    assert own_again.headers["idempotent-replayed"] == "true"
    mine_again = await client.post("/v1/checkins", json=sent, headers=with_key(patient))
    assert mine_again.status_code == 201, mine_again.text
    assert mine_again.content == mine.content
    assert await list_ids(client, patient, "checkins") == {sent["id"]}
    assert await list_ids(client, other, "checkins") == {own.json()["id"]}


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "naïve".encode("latin-1")])
async def test_bad_idempotency_keys_are_refused(
    client: httpx.AsyncClient, patient: Person, key: str | bytes
) -> None:
    response = await client.post(
        "/v1/checkins",
        json=body("checkins"),
        headers=[(k.encode(), v.encode()) for k, v in patient.headers.items()]
        + [(b"Idempotency-Key", key if isinstance(key, bytes) else key.encode())],
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Idempotency-Key must be 1-255 printable ASCII characters."
    )
    assert await count(client, patient, "checkins") == 0


@pytest.mark.parametrize("key", ["k", "x" * 255, "a space inside", "tilde~", "!"])
async def test_idempotency_keys_at_the_edges_are_taken(
    client: httpx.AsyncClient, patient: Person, key: str
) -> None:
    # One character and 255; the printable range runs from the space to the tilde.
    headers = {**patient.headers, "Idempotency-Key": key}
    first = await client.post("/v1/checkins", json=body("checkins"), headers=headers)
    again = await client.post("/v1/checkins", json=body("checkins"), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(client, patient, "checkins") == 1


# --- validation: clear 4xx, nothing written -----------------------------------------------------


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("sessions", {"route": "rectal"}, "route"),
    ("sessions", {"setting": "space"}, "setting"),
    ("sessions", {"dose_mg": 0}, "dose_mg"),
    ("sessions", {"dose_mg": 1000.5}, "dose_mg"),
    ("sessions", {"started_at": "2026-01-01T10:00:00"}, "started_at"),
    ("sessions", {"started_at": iso(timedelta(days=1))}, "started_at"),
    ("sessions", {"notes": "x" * 5001}, "notes"),
    ("intentions", {"text": ""}, "text"),
    ("intentions", {"text": "x" * 2001}, "text"),
    ("intentions", {"status": "done"}, "status"),
    ("reflections", {"text": "x" * 20001}, "text"),
    ("reflections", {"emotions": ["x" * 41]}, "emotions"),
    ("reflections", {"emotions": ["calm"] * 21}, "emotions"),
    ("reflections", {"prompts": [{"prompt": "p", "answer": "a", "extra": 1}]}, "extra"),
    ("reflections", {"prompts": [{"prompt": "p", "answer": "x" * 5001}]}, "answer"),
    ("reflections", {"intention_ids": ["not-a-uuid"]}, "intention_ids"),
    ("checkins", {"mood": 11}, "mood"),
    ("checkins", {"mood": -1}, "mood"),
    ("checkins", {"mood": "5"}, "mood"),
    ("checkins", {"mood": 5.5}, "mood"),
    ("checkins", {"mood": None}, "mood"),
    ("checkins", {"anxiety": 11}, "anxiety"),
    ("checkins", {"sleep_hours": 25}, "sleep_hours"),
    ("checkins", {"note": "x" * 2001}, "note"),
    ("checkins", {"note": "nul\x00"}, "note"),
    # A day ahead, not six minutes: this table is built when the module loads, long before it runs.
    ("checkins", {"recorded_at": iso(timedelta(days=1))}, "recorded_at"),
    ("checkins", {"private": "yes"}, "private"),
    ("checkins", {"owner_id": str(uuid.uuid4())}, "owner_id"),
    ("checkins", {"id": "123"}, "id"),
    ("assessments", {"instrument": "bdi"}, "instrument"),
    ("assessments", {"answers": [1] * 6}, "body"),
    ("assessments", {"answers": [1, 1, 1, 1, 1, 1, 4]}, "body"),
    ("assessments", {"answers": [True] * 7}, "answers"),
    ("assessments", {"answers": [1] * 21}, "answers"),
    ("assessments", {"total": 0}, "total"),
]


@pytest.mark.parametrize(("resource", "overrides", "field"), INVALID)
async def test_invalid_bodies_are_422_and_write_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post(
        f"/v1/{resource}", json=body(resource, **overrides), headers=patient.headers
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in [str(part) for part in issue["loc"]] for issue in problem["errors"]), (
        problem
    )
    assert await count(client, patient, resource) == 0


async def test_a_check_in_a_few_minutes_ahead_is_accepted(
    client: httpx.AsyncClient, patient: Person
) -> None:
    created = await create(client, patient, "checkins", recorded_at=iso(timedelta(minutes=4)))
    assert created["backfilled"] is False


async def test_a_check_in_six_minutes_ahead_is_refused(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/checkins",
        json=body("checkins", recorded_at=iso(timedelta(minutes=6))),
        headers=patient.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "recorded_at"]


async def test_backfilled_check_ins_are_flagged(client: httpx.AsyncClient, patient: Person) -> None:
    recent = await create(client, patient, "checkins", recorded_at=iso(-timedelta(hours=23)))
    old = await create(client, patient, "checkins", recorded_at=iso(-timedelta(hours=25)))
    assert (recent["backfilled"], old["backfilled"]) == (False, True)
    assert old["received_at"] == old["created_at"]
    # Moving recorded_at is judged against when the server first received it.
    moved = await client.patch(
        f"/v1/checkins/{recent['id']}",
        json={"recorded_at": iso(-timedelta(days=3))},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert moved.json()["backfilled"] is True


# --- assessments are scored by the server -------------------------------------------------------


async def test_phq9_item_9_raises_a_safety_flag_with_crisis_resources(
    client: httpx.AsyncClient, patient: Person
) -> None:
    flagged = await create(
        client, patient, "assessments", instrument="phq9", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1]
    )
    assert (flagged["total"], flagged["band"], flagged["safety_flag"]) == (1, "minimal", True)
    assert flagged["crisis_resources"]
    assert any(resource.get("phone") == "988" for resource in flagged["crisis_resources"])
    calm = await create(
        client, patient, "assessments", instrument="phq9", answers=[3, 3, 3, 3, 3, 3, 3, 3, 0]
    )
    assert (calm["total"], calm["band"], calm["safety_flag"], calm["crisis_resources"]) == (
        24,
        "severe",
        False,
        [],
    )


async def test_pcl5_is_scored_with_clusters(client: httpx.AsyncClient, patient: Person) -> None:
    answers = [2, 0, 0, 0, 0, 3, 0, 2, 2, 0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 0]
    scored = await create(client, patient, "assessments", instrument="pcl5", answers=answers)
    assert scored["total"] == 17
    assert scored["clusters"] == {"B": 1, "C": 1, "D": 2, "E": 2}
    assert scored["provisional_diagnosis"] is True
    assert scored["provisional_positive"] is False
    assert scored["band"] == "below_threshold"


async def test_wrong_answer_count_says_what_is_wrong(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/assessments", json={"instrument": "phq9", "answers": [1] * 8}, headers=patient.headers
    )
    assert response.status_code == 422
    assert "PHQ-9 needs 9 answers, got 8" in response.text


# --- references ---------------------------------------------------------------------------------


async def test_references_to_missing_and_foreign_entries_get_the_same_answer(
    client: httpx.AsyncClient, patient: Person
) -> None:
    from tests.support.people import register

    stranger = await register(client)
    their_session = await create(client, stranger, "sessions")
    their_intention = await create(client, stranger, "intentions")
    answers = []
    for overrides in (
        {"session_id": their_session["id"]},
        {"session_id": str(uuid.uuid4())},
    ):
        answers.append(
            await client.post(
                "/v1/reflections", json=body("reflections", **overrides), headers=patient.headers
            )
        )
    assert answers[0].status_code == answers[1].status_code == 422
    assert answers[0].json() == answers[1].json()
    foreign, missing = [
        await client.post(
            "/v1/reflections", json=body("reflections", intention_ids=[i]), headers=patient.headers
        )
        for i in (their_intention["id"], str(uuid.uuid4()))
    ]
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json() == missing.json()
    assert await count(client, patient, "reflections") == 0


async def test_reflections_link_own_session_and_intentions(
    client: httpx.AsyncClient, patient: Person
) -> None:
    session = await create(client, patient, "sessions")
    intentions = [await create(client, patient, "intentions") for _ in range(2)]
    ids = [i["id"] for i in intentions]
    reflection = await create(
        client, patient, "reflections", session_id=session["id"], intention_ids=ids
    )
    assert reflection["session_id"] == session["id"]
    assert reflection["intention_ids"] == ids
    duplicate = await client.post(
        "/v1/reflections",
        json=body("reflections", intention_ids=[ids[0], ids[0]]),
        headers=patient.headers,
    )
    assert duplicate.status_code == 422


# --- lists ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 201, -1, "ten"])
async def test_limit_out_of_range_is_422(
    client: httpx.AsyncClient, patient: Person, limit: int | str
) -> None:
    response = await client.get("/v1/checkins", params={"limit": limit}, headers=patient.headers)
    assert response.status_code == 422


def forged_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


FORGED_CURSORS = [
    # Times whose offset carries them past year 1 or 9999 in UTC: refused, not an overflow.
    forged_cursor(f"0001-01-01T00:00:00+23:59|{uuid.UUID(int=1)}"),
    forged_cursor(f"9999-12-31T23:59:59-23:59|{uuid.UUID(int=1)}"),
    forged_cursor(f"2026-11-21T08:00:00|{uuid.UUID(int=1)}"),  # no zone
]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "bm90fGEtY3Vyc29y", "MjAyNi0xMS0yMVQwODozNDowMnx4", "", "%%%", *FORGED_CURSORS],
)
async def test_bad_cursor_is_a_400_problem(
    client: httpx.AsyncClient, patient: Person, cursor: str
) -> None:
    response = await client.get("/v1/checkins", params={"cursor": cursor}, headers=patient.headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_lists_are_newest_first_and_filter_by_time(
    client: httpx.AsyncClient, patient: Person
) -> None:
    days = [
        await create(client, patient, "checkins", mood=n, recorded_at=iso(-timedelta(days=n)))
        for n in range(5)
    ]
    listed = (await client.get("/v1/checkins", headers=patient.headers)).json()["items"]
    assert [c["mood"] for c in listed] == [0, 1, 2, 3, 4]
    window = await client.get(
        "/v1/checkins",
        params={"since": days[3]["recorded_at"], "until": days[1]["recorded_at"]},
        headers=patient.headers,
    )
    assert [c["mood"] for c in window.json()["items"]] == [2, 3]


async def test_lists_filter_by_session(client: httpx.AsyncClient, patient: Person) -> None:
    first, second = (
        await create(client, patient, "sessions"),
        await create(client, patient, "sessions"),
    )
    tied = await create(client, patient, "intentions", session_id=first["id"])
    await create(client, patient, "intentions", session_id=second["id"])
    await create(client, patient, "intentions")
    response = await client.get(
        "/v1/intentions", params={"session_id": first["id"]}, headers=patient.headers
    )
    assert [i["id"] for i in response.json()["items"]] == [tied["id"]]


async def test_therapists_keep_no_journal(client: httpx.AsyncClient, therapist: Person) -> None:
    for resource in RESOURCES:
        response = await client.post(
            f"/v1/{resource}", json=body(resource), headers=therapist.headers
        )
        assert response.status_code == 403
        assert (await client.get(f"/v1/{resource}", headers=therapist.headers)).status_code == 403


async def test_anonymous_requests_are_401(client: httpx.AsyncClient) -> None:
    for resource in RESOURCES:
        assert (await client.post(f"/v1/{resource}", json=body(resource))).status_code == 401
        assert (await client.get(f"/v1/{resource}")).status_code == 401
