"""The sync feed (GET /v1/sync) and offline batches (POST /v1/sync)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.journal import (
    RESOURCE_NAMES,
    Json,
    assert_problem,
    body_for,
    changed_ids,
    create,
    deleted_ids,
    edit,
    is_empty,
    list_ids,
    new_id,
    page_size,
    pull,
    remove,
)
from tests.support.people import Person, register

NOTHING: dict[str, set[str]] = {name: set() for name in RESOURCE_NAMES}


async def one_of_each(client: httpx.AsyncClient, person: Person) -> dict[str, list[Json]]:
    made: dict[str, list[Json]] = {name: [] for name in RESOURCE_NAMES}
    for name in RESOURCE_NAMES:
        made[name].append(await create(client, person, name))
    made["checkins"].append(await create(client, person, "checkins", mood=2, private=True))
    return made


# --- GET /v1/sync --------------------------------------------------------------------------------


async def test_first_sync_returns_every_create_grouped_by_resource(
    client: httpx.AsyncClient, patient: Person
) -> None:
    made = await one_of_each(client, patient)

    page = await pull(client, patient, "0")

    for name in RESOURCE_NAMES:
        # Each entry exactly as its own POST answered, in the group of its resource.
        assert page["changes"][name] == made[name], name
        assert page["deleted"][name] == []
    assert page["next_cursor"] == "6"  # six writes, numbered from 1 for this patient
    assert page["has_more"] is False


async def test_a_sync_from_the_latest_cursor_returns_nothing_and_the_same_cursor(
    client: httpx.AsyncClient, patient: Person
) -> None:
    await one_of_each(client, patient)
    first = await pull(client, patient, "0")

    second = await pull(client, patient, first["next_cursor"])

    assert is_empty(second)
    assert second["next_cursor"] == first["next_cursor"]
    assert second["has_more"] is False


async def test_a_new_patients_first_sync_is_empty_at_cursor_zero(
    client: httpx.AsyncClient, patient: Person
) -> None:
    page = await pull(client, patient, "0")
    assert is_empty(page)
    assert page["next_cursor"] == "0"
    assert page["has_more"] is False


async def test_an_edit_shows_the_entry_once_with_its_new_version(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    other = await create(client, patient, "intentions")
    cursor = (await pull(client, patient, "0"))["next_cursor"]

    edited = await edit(client, patient, "checkins", checkin, {"mood": 8})

    since_cursor = await pull(client, patient, cursor)
    assert since_cursor["changes"]["checkins"] == [edited]
    assert edited["version"] == 2
    assert edited["mood"] == 8
    assert page_size(since_cursor) == 1
    assert since_cursor["next_cursor"] == str(int(cursor) + 1)

    from_zero = await pull(client, patient, "0")
    assert from_zero["changes"]["checkins"] == [edited]  # once, current version only
    assert from_zero["changes"]["intentions"] == [other]


async def test_a_delete_is_listed_under_deleted_and_not_under_changes(
    client: httpx.AsyncClient, patient: Person
) -> None:
    kept = await create(client, patient, "reflections")
    gone = await create(client, patient, "reflections", text="to be deleted")
    gone_assessment = await create(client, patient, "assessments")
    cursor = (await pull(client, patient, "0"))["next_cursor"]

    await remove(client, patient, "reflections", gone)
    await remove(client, patient, "assessments", gone_assessment)

    since_cursor = await pull(client, patient, cursor)
    assert deleted_ids(since_cursor) == {
        **NOTHING,
        "reflections": {gone["id"]},
        "assessments": {gone_assessment["id"]},
    }
    assert changed_ids(since_cursor) == NOTHING

    from_zero = await pull(client, patient, "0")
    assert changed_ids(from_zero) == {**NOTHING, "reflections": {kept["id"]}}
    assert deleted_ids(from_zero) == {
        **NOTHING,
        "reflections": {gone["id"]},
        "assessments": {gone_assessment["id"]},
    }


async def build_mixed_history(client: httpx.AsyncClient, person: Person) -> None:
    """Creates, edits and deletes across all five resources, ending with a run of check-ins
    (so that one resource alone holds more than a page)."""
    session = await create(client, person, "sessions")
    intention = await create(client, person, "intentions", session_id=session["id"])
    first_checkin = await create(client, person, "checkins", mood=1)
    await create(client, person, "assessments")
    reflection = await create(
        client, person, "reflections", session_id=session["id"], intention_ids=[intention["id"]]
    )
    await create(client, person, "assessments", instrument="gad7", answers=[1] * 7)
    await edit(client, person, "intentions", intention, {"status": "revisited"})
    await remove(client, person, "reflections", reflection)
    await edit(client, person, "checkins", first_checkin, {"mood": 2})
    doomed = await create(client, person, "sessions")
    await remove(client, person, "sessions", doomed)
    for mood in range(5):
        await create(client, person, "checkins", mood=mood)


def flatten(page: Json) -> list[tuple[str, str, Any]]:
    return [
        *(
            ("change", name, entry["id"])
            for name in RESOURCE_NAMES
            for entry in page["changes"][name]
        ),
        *(
            ("deleted", name, entry_id)
            for name in RESOURCE_NAMES
            for entry_id in page["deleted"][name]
        ),
    ]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7])
async def test_limit_pages_through_every_change_exactly_once(
    client: httpx.AsyncClient, patient: Person, limit: int
) -> None:
    await build_mixed_history(client, patient)
    everything = await pull(client, patient, "0", limit=1000)
    assert everything["has_more"] is False
    expected = flatten(everything)
    assert len(expected) == len(set(expected)) == 12  # 10 live entries and 2 deletions

    seen: list[tuple[str, str, Any]] = []
    cursor = "0"
    for _ in range(len(expected) + 2):
        page = await pull(client, patient, cursor, limit=limit)
        assert page_size(page) <= limit
        seen.extend(flatten(page))
        assert int(page["next_cursor"]) >= int(cursor)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
        # has_more promises more: a page that says so is full, and the next is not empty.
        assert page_size(page) == limit
    else:
        pytest.fail("has_more never became false")

    assert len(seen) == len(set(seen)), "a change was delivered twice"
    assert sorted(seen) == sorted(expected), "a change was missed"
    assert cursor == everything["next_cursor"]
    # has_more was false: there really is nothing more.
    assert is_empty(await pull(client, patient, cursor, limit=limit))


@pytest.mark.parametrize("cursor", ["-1", "abc", "1e5", "1.0", "+1", " 1", "", "0x10", "9" * 19])
async def test_a_bad_cursor_is_a_400_problem(
    client: httpx.AsyncClient, patient: Person, cursor: str
) -> None:
    response = await client.get("/v1/sync", params={"cursor": cursor}, headers=patient.headers)
    assert_problem(response, 400)


async def test_a_30_digit_cursor_is_refused_as_a_problem(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.get("/v1/sync", params={"cursor": "1" * 30}, headers=patient.headers)
    assert_problem(response, 400)


async def test_another_patients_changes_never_appear(
    client: httpx.AsyncClient, patient: Person
) -> None:
    other = await register(client, "patient")
    mine = await create(client, patient, "checkins")
    theirs = await create(client, other, "checkins", mood=9)
    their_intention = await create(client, other, "intentions")
    await edit(client, other, "checkins", theirs, {"mood": 1})
    await remove(client, other, "intentions", their_intention)
    await create(client, other, "assessments", answers=[0, 0, 0, 0, 0, 0, 0, 0, 1])

    page = await pull(client, patient, "0")

    assert changed_ids(page) == {**NOTHING, "checkins": {mine["id"]}}
    assert deleted_ids(page) == NOTHING
    assert page["next_cursor"] == "1"
    # Their counter is their own: a cursor far past mine still shows nothing of theirs.
    assert is_empty(await pull(client, patient, "1"))


async def test_a_therapist_gets_403_from_sync(client: httpx.AsyncClient, therapist: Person) -> None:
    assert_problem(await client.get("/v1/sync?cursor=0", headers=therapist.headers), 403)
    batch = {"operations": [{"op": "create", "resource": "checkins", "data": {"mood": 5}}]}
    response = await client.post(
        "/v1/sync", json=batch, headers={**therapist.headers, "Idempotency-Key": new_id()}
    )
    assert_problem(response, 403)


async def test_sync_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/sync?cursor=0"), 401)


# --- POST /v1/sync -------------------------------------------------------------------------------


async def push(
    client: httpx.AsyncClient,
    person: Person,
    operations: list[Json],
    key: str | None = None,
    *,
    atomic: bool = False,
) -> httpx.Response:
    headers = {**person.headers, "Idempotency-Key": key or new_id()}
    batch: Json = {"operations": operations, **({"atomic": True} if atomic else {})}
    return await client.post("/v1/sync", json=batch, headers=headers)


APPLIED: Json = {"outcome": "applied", "problem": None, "current": None, "notes": []}


async def test_a_batch_of_create_update_and_delete_applies_in_order(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    intention = await create(client, patient, "intentions")
    cursor = (await pull(client, patient, "0"))["next_cursor"]
    session_id, new_intention_id = new_id(), new_id()

    response = await push(
        client,
        patient,
        [
            {
                "op": "create",
                "resource": "sessions",
                "id": session_id,
                "data": body_for("sessions"),
            },
            # Names the session created by the operation before it: the batch applies in order.
            {
                "op": "create",
                "resource": "intentions",
                "id": new_intention_id,
                "data": {"text": "Listen", "session_id": session_id},
            },
            {
                "op": "update",
                "resource": "checkins",
                "id": checkin["id"],
                "if_match": '"1"',
                "data": {"mood": 9},
            },
            {"op": "delete", "resource": "intentions", "id": intention["id"], "if_match": '"1"'},
        ],
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["results"] == [
        {
            "op": "create",
            "resource": "sessions",
            "id": session_id,
            "status": 201,
            "etag": '"1"',
            **APPLIED,
        },
        {
            "op": "create",
            "resource": "intentions",
            "id": new_intention_id,
            "status": 201,
            "etag": '"1"',
            **APPLIED,
        },
        {
            "op": "update",
            "resource": "checkins",
            "id": checkin["id"],
            "status": 200,
            "etag": '"2"',
            **APPLIED,
        },
        {
            "op": "delete",
            "resource": "intentions",
            "id": intention["id"],
            "status": 204,
            "etag": None,
            **APPLIED,
        },
    ]
    assert set(result) == {"results"}  # no cursor here: pulls move only from their own

    got = await client.get(f"/v1/checkins/{checkin['id']}", headers=patient.headers)
    assert got.json()["mood"] == 9
    assert got.headers["etag"] == '"2"'
    assert await list_ids(client, patient, "intentions") == {new_intention_id}
    assert await list_ids(client, patient, "sessions") == {session_id}

    page = await pull(client, patient, cursor)
    assert changed_ids(page) == {
        **NOTHING,
        "sessions": {session_id},
        "intentions": {new_intention_id},
        "checkins": {checkin["id"]},
    }
    assert deleted_ids(page) == {**NOTHING, "intentions": {intention["id"]}}
    assert page["next_cursor"] == str(int(cursor) + 4)  # four writes, one change number each


async def assert_nothing_written(
    client: httpx.AsyncClient, person: Person, cursor: str, before: dict[str, set[str]]
) -> None:
    page = await pull(client, person, cursor)
    assert is_empty(page)
    assert page["next_cursor"] == cursor
    for name in RESOURCE_NAMES:
        assert await list_ids(client, person, name) == before[name], name


async def snapshot(client: httpx.AsyncClient, person: Person) -> tuple[str, dict[str, set[str]]]:
    cursor = (await pull(client, person, "0"))["next_cursor"]
    return cursor, {name: await list_ids(client, person, name) for name in RESOURCE_NAMES}


async def test_a_batch_whose_last_operation_is_stale_applies_nothing(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    doomed = await create(client, patient, "reflections")
    edited = await edit(client, patient, "checkins", checkin, {"mood": 4})  # now at version 2
    cursor, before = await snapshot(client, patient)

    response = await push(
        client,
        patient,
        atomic=True,
        operations=[
            {"op": "create", "resource": "checkins", "data": {"mood": 7}},
            {"op": "delete", "resource": "reflections", "id": doomed["id"], "if_match": '"1"'},
            {
                "op": "update",
                "resource": "checkins",
                "id": checkin["id"],
                "if_match": '"1"',
                "data": {"mood": 0},
            },
        ],
    )

    problem = assert_problem(response, 412)
    assert problem["operation"] == 2
    assert problem["detail"].startswith("Operation 2 (update checkins)")
    await assert_nothing_written(client, patient, cursor, before)
    got = await client.get(f"/v1/checkins/{checkin['id']}", headers=patient.headers)
    assert got.json() == edited


async def test_a_batch_whose_last_operation_has_invalid_data_applies_nothing(
    client: httpx.AsyncClient, patient: Person
) -> None:
    await create(client, patient, "checkins")
    cursor, before = await snapshot(client, patient)

    response = await push(
        client,
        patient,
        atomic=True,
        operations=[
            {"op": "create", "resource": "intentions", "data": {"text": "Stay curious"}},
            {"op": "create", "resource": "sessions", "data": body_for("sessions")},
            {"op": "create", "resource": "checkins", "data": {"mood": 11}},
        ],
    )

    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [
        ["body", "operations", 2, "data", "mood"]
    ]
    assert problem["operation"] == 2
    await assert_nothing_written(client, patient, cursor, before)


async def test_a_batch_whose_last_assessment_does_not_score_applies_nothing(
    client: httpx.AsyncClient, patient: Person
) -> None:
    cursor, before = await snapshot(client, patient)
    response = await push(
        client,
        patient,
        atomic=True,
        operations=[
            {"op": "create", "resource": "checkins", "data": {"mood": 4}},
            {
                "op": "create",
                "resource": "assessments",
                "data": {"instrument": "gad7", "answers": [1] * 9},
            },
        ],
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"][:4] == ["body", "operations", 1, "data"]
    assert problem["operation"] == 1
    await assert_nothing_written(client, patient, cursor, before)


async def test_resending_a_batch_with_the_same_key_replays_it_and_writes_nothing(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    # Creates without client ids: a second execution would make new rows.
    operations = [
        {"op": "create", "resource": "checkins", "data": {"mood": 6}},
        {"op": "create", "resource": "reflections", "data": {"text": "Once"}},
        {
            "op": "update",
            "resource": "checkins",
            "id": checkin["id"],
            "if_match": '"1"',
            "data": {"mood": 5},
        },
    ]
    key = new_id()
    first = await push(client, patient, operations, key)
    assert first.status_code == 200, first.text
    cursor, before = await snapshot(client, patient)

    again = await push(client, patient, operations, key)

    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    await assert_nothing_written(client, patient, cursor, before)
    assert len(before["checkins"]) == 2
    assert len(before["reflections"]) == 1


async def test_the_same_key_with_another_batch_is_422(
    client: httpx.AsyncClient, patient: Person
) -> None:
    key = new_id()
    first = await push(
        client, patient, [{"op": "create", "resource": "checkins", "data": {"mood": 6}}], key
    )
    assert first.status_code == 200, first.text
    cursor, before = await snapshot(client, patient)

    other = await push(
        client, patient, [{"op": "create", "resource": "checkins", "data": {"mood": 7}}], key
    )

    assert_problem(other, 422)
    await assert_nothing_written(client, patient, cursor, before)


async def test_a_batch_without_an_idempotency_key_is_refused(
    client: httpx.AsyncClient, patient: Person
) -> None:
    cursor, before = await snapshot(client, patient)
    batch = {"operations": [{"op": "create", "resource": "checkins", "data": {"mood": 6}}]}

    response = await client.post("/v1/sync", json=batch, headers=patient.headers)

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["header", "idempotency-key"]
    await assert_nothing_written(client, patient, cursor, before)


async def test_a_failed_batch_can_be_retried_with_its_key(
    client: httpx.AsyncClient, patient: Person
) -> None:
    # The failure rolled back the key's record too: the same batch, once it can succeed, runs.
    checkin = await create(client, patient, "checkins", mood=3)
    key = new_id()
    operations = [
        {"op": "create", "resource": "intentions", "data": {"text": "Retry me"}},
        {"op": "delete", "resource": "checkins", "id": checkin["id"], "if_match": '"2"'},
    ]
    assert_problem(await push(client, patient, operations, key, atomic=True), 412)
    await edit(client, patient, "checkins", checkin, {"mood": 4})

    retried = await push(client, patient, operations, key, atomic=True)

    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert len(await list_ids(client, patient, "intentions")) == 1
    assert await list_ids(client, patient, "checkins") == set()


async def test_deleting_a_session_is_a_new_version_of_every_entry_that_named_it(
    client: httpx.AsyncClient, patient: Person
) -> None:
    session = await create(client, patient, "sessions")
    linked = {
        resource: await create(client, patient, resource, session_id=session["id"])
        for resource in ("intentions", "reflections")
    }
    cursor = (await pull(client, patient))["next_cursor"]
    await remove(client, patient, "sessions", session)

    page = await pull(client, patient, cursor)
    assert deleted_ids(page)["sessions"] == {session["id"]}
    for resource, entry in linked.items():
        # The phone hears of the change, and the entry has a new version and ETag.
        [changed] = page["changes"][resource]
        assert changed["id"] == entry["id"]
        assert changed["session_id"] is None
        assert changed["version"] == entry["version"] + 1
        read = await client.get(f"/v1/{resource}/{entry['id']}", headers=patient.headers)
        assert read.json()["session_id"] is None
        assert read.headers["etag"] == f'"{entry["version"] + 1}"'
