"""POST /v1/sync never gets stuck: the situations that made offline phones fail on every attempt,
each answered per operation, and the conflict rule (the same on PATCH and DELETE)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.support.journal import (
    Json,
    assert_problem,
    create,
    edit,
    iso,
    list_ids,
    new_id,
    now,
    phq9,
    pull,
    remove,
)
from tests.support.people import Person, register


async def push(client: httpx.AsyncClient, person: Person, *operations: Json) -> list[Json]:
    """One batch (each push with a new Idempotency-Key, as a phone resending its queue after a
    lost answer does not know the batch went through); the per-operation results."""
    response = await client.post(
        "/v1/sync",
        json={"operations": list(operations)},
        headers={**person.headers, "Idempotency-Key": new_id()},
    )
    assert response.status_code == 200, response.text
    results: list[Json] = response.json()["results"]
    assert len(results) == len(operations)
    return results


def created(resource: str, entry_id: str, **data: Any) -> Json:
    return {"op": "create", "resource": resource, "id": entry_id, "data": data}


def updated(resource: str, entry_id: str, version: int, **data: Any) -> Json:
    return {
        "op": "update",
        "resource": resource,
        "id": entry_id,
        "if_match": f'"{version}"',
        "data": data,
    }


def deleted(resource: str, entry_id: str, version: int | None = 1) -> Json:
    operation: Json = {"op": "delete", "resource": resource, "id": entry_id}
    if version is not None:
        operation["if_match"] = f'"{version}"'
    return operation


async def current(client: httpx.AsyncClient, person: Person, resource: str, entry_id: str) -> Json:
    response = await client.get(f"/v1/{resource}/{entry_id}", headers=person.headers)
    assert response.status_code == 200, response.text
    entry: Json = response.json()
    return entry


async def last_change(client: httpx.AsyncClient, person: Person) -> int:
    return int((await pull(client, person, "0", limit=1000))["next_cursor"])


# --- the four ways a queue got stuck ---------------------------------------------------------------


async def test_an_entry_created_and_deleted_offline_is_a_no_op_and_the_rest_applies(
    client: httpx.AsyncClient, patient: Person
) -> None:
    never_sent, checkin = new_id(), new_id()

    results = await push(
        client,
        patient,
        deleted("reflections", never_sent),
        created("checkins", checkin, mood=4),
    )

    assert [(r["outcome"], r["status"]) for r in results] == [("replayed", 204), ("applied", 201)]
    assert results[0]["problem"] is None
    assert await list_ids(client, patient, "checkins") == {checkin}
    # A delete of an id already deleted is the same no-op, however often it is resent.
    again = await push(client, patient, deleted("checkins", checkin), deleted("checkins", checkin))
    assert [r["outcome"] for r in again] == ["applied", "replayed"]
    assert await list_ids(client, patient, "checkins") == set()


async def test_a_create_whose_answer_was_lost_then_edited_is_an_edit(
    client: httpx.AsyncClient, patient: Person
) -> None:
    entry_id = new_id()
    first = await push(client, patient, created("intentions", entry_id, text="Slow down"))
    assert first[0]["outcome"] == "applied"
    # The answer never reached the phone; the patient edits; the phone resends it as a create.
    resent = await push(client, patient, created("intentions", entry_id, text="Slow down, breathe"))

    assert (resent[0]["outcome"], resent[0]["status"], resent[0]["etag"]) == ("applied", 200, '"2"')
    stored = await current(client, patient, "intentions", entry_id)
    assert (stored["text"], stored["version"]) == ("Slow down, breathe", 2)
    # The same create once more: nothing to do, nothing written.
    before = await last_change(client, patient)
    again = await push(client, patient, created("intentions", entry_id, text="Slow down, breathe"))
    assert again[0]["outcome"] == "replayed"
    assert await last_change(client, patient) == before


async def test_an_edit_whose_answer_was_lost_is_not_applied_twice(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    operation = updated("checkins", checkin["id"], 1, mood=8)
    assert (await push(client, patient, operation))[0]["outcome"] == "applied"
    before = await last_change(client, patient)

    resent = await push(client, patient, operation)

    assert (resent[0]["outcome"], resent[0]["etag"]) == ("replayed", '"2"')
    assert (await current(client, patient, "checkins", checkin["id"]))["version"] == 2
    assert await last_change(client, patient) == before


async def test_an_entry_naming_a_session_deleted_elsewhere_is_stored_without_it(
    client: httpx.AsyncClient, patient: Person
) -> None:
    session = await create(client, patient, "sessions")
    intention = await create(client, patient, "intentions", session_id=session["id"])
    await remove(client, patient, "sessions", session)  # on the other phone
    # Unlinking it was a change of the intention's own: a new version, so its ETag tells.
    intention = await current(client, patient, "intentions", intention["id"])
    assert (intention["version"], intention["session_id"]) == (2, None)
    await remove(client, patient, "intentions", intention)
    new_intention, reflection, checkin = new_id(), new_id(), new_id()

    results = await push(
        client,
        patient,
        created("intentions", new_intention, text="Rest", session_id=session["id"]),
        created(
            "reflections",
            reflection,
            text="Calmer",
            session_id=session["id"],
            intention_ids=[intention["id"], new_intention],
        ),
        created("checkins", checkin, mood=6),
    )

    assert [r["outcome"] for r in results] == ["applied"] * 3
    assert any("session_id cleared" in note for note in results[0]["notes"])
    assert len(results[1]["notes"]) == 2
    assert results[2]["notes"] == []
    assert (await current(client, patient, "intentions", new_intention))["session_id"] is None
    stored = await current(client, patient, "reflections", reflection)
    assert (stored["session_id"], stored["intention_ids"]) == (None, [new_intention])


async def test_one_bad_entry_is_rejected_alone_and_the_rest_applies(
    client: httpx.AsyncClient, patient: Person
) -> None:
    assessment = await create(client, patient, "assessments")
    good, bad = new_id(), new_id()

    results = await push(
        client,
        patient,
        created("checkins", bad, mood=11),
        updated("assessments", assessment["id"], 1, answers=phq9(3)),
        created("checkins", good, mood=7),
    )

    assert [(r["outcome"], r["status"]) for r in results] == [
        ("rejected", 422),
        ("rejected", 400),
        ("applied", 201),
    ]
    problem = results[0]["problem"]
    assert {problem["type"], problem["title"]} == {"/problems/validation", "Unprocessable Content"}
    assert [error["loc"] for error in problem["errors"]] == [
        ["body", "operations", 0, "data", "mood"]
    ]
    assert "cannot be edited" in results[1]["problem"]["detail"]
    assert await list_ids(client, patient, "checkins") == {good}


async def test_a_clock_two_days_fast_is_stored_at_receipt_and_flagged(
    client: httpx.AsyncClient, patient: Person
) -> None:
    fast, slow, on_time = new_id(), new_id(), new_id()
    sent = now()

    results = await push(
        client,
        patient,
        created("checkins", fast, mood=5, recorded_at=iso(sent + timedelta(days=2))),
        created("checkins", slow, mood=5, recorded_at=iso(sent - timedelta(days=2))),
        created("reflections", on_time, text="Now", written_at=iso(sent)),
    )

    assert [r["outcome"] for r in results] == ["applied"] * 3
    assert [bool(r["notes"]) for r in results] == [True, False, False]
    assert "recorded_at" in results[0]["notes"][0]
    fast_entry = await current(client, patient, "checkins", fast)
    assert fast_entry["clock_adjusted"] is True
    assert fast_entry["recorded_at"] == fast_entry["received_at"]
    slow_entry = await current(client, patient, "checkins", slow)
    assert (slow_entry["clock_adjusted"], slow_entry["backfilled"]) == (False, True)
    assert (await current(client, patient, "reflections", on_time))["clock_adjusted"] is False
    # A live POST still refuses the fast clock: its sender can fix it now.
    response = await client.post(
        "/v1/checkins",
        json={"mood": 5, "recorded_at": iso(sent + timedelta(days=2))},
        headers=patient.headers,
    )
    assert_problem(response, 422)


# --- conflicts: decided, never silent ---------------------------------------------------------------


async def test_a_delete_against_an_older_version_keeps_the_later_edit(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    edited = await edit(client, patient, "checkins", checkin, {"mood": 9})  # the other phone

    results = await push(client, patient, deleted("checkins", checkin["id"], 1))

    (result,) = results
    assert (result["outcome"], result["status"], result["etag"]) == ("conflict", 412, '"2"')
    assert result["current"] == edited
    assert result["problem"]["type"] == "/problems/precondition-failed"
    assert await current(client, patient, "checkins", checkin["id"]) == edited
    # Having seen it, the patient may still delete it: against the version now shown.
    assert (await push(client, patient, deleted("checkins", checkin["id"], 2)))[0][
        "outcome"
    ] == "applied"


async def test_an_edit_of_an_entry_deleted_elsewhere_is_a_conflict_with_no_current_entry(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    await remove(client, patient, "checkins", checkin)  # the other phone, first

    (result,) = await push(client, patient, updated("checkins", checkin["id"], 1, mood=4))

    assert (result["outcome"], result["status"], result["current"]) == ("conflict", 409, None)
    assert "deleted" in result["problem"]["detail"]
    # A create of that id (an answer lost before the delete) is the same conflict.
    (again,) = await push(client, patient, created("checkins", checkin["id"], mood=4))
    assert (again["outcome"], again["current"]) == ("conflict", None)
    assert await list_ids(client, patient, "checkins") == set()


async def test_two_edits_of_one_field_the_second_is_a_conflict_until_made_against_the_first(
    client: httpx.AsyncClient, patient: Person
) -> None:
    intention = await create(client, patient, "intentions")
    (first,) = await push(
        client, patient, updated("intentions", intention["id"], 1, status="revisited")
    )
    assert first["outcome"] == "applied"

    (second,) = await push(
        client, patient, updated("intentions", intention["id"], 1, status="archived")
    )
    assert (second["outcome"], second["current"]["status"]) == ("conflict", "revisited")
    # The patient saw both and kept theirs: sent against the version now current.
    (kept,) = await push(
        client, patient, updated("intentions", intention["id"], 2, status="archived")
    )
    assert (kept["outcome"], kept["etag"]) == ("applied", '"3"')


async def test_a_create_resent_after_the_other_phone_edited_it_is_a_conflict(
    client: httpx.AsyncClient, patient: Person
) -> None:
    entry_id = new_id()
    await push(client, patient, created("checkins", entry_id, mood=2))
    other = await current(client, patient, "checkins", entry_id)
    await edit(client, patient, "checkins", other, {"mood": 3})  # the other phone, version 2

    (result,) = await push(client, patient, created("checkins", entry_id, mood=7))

    assert (result["outcome"], result["current"]["mood"]) == ("conflict", 3)


async def test_patch_and_delete_follow_the_same_rule(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    edited = await edit(client, patient, "checkins", checkin, {"mood": 6})
    stale = {**patient.headers, "If-Match": '"1"'}
    url = f"/v1/checkins/{checkin['id']}"

    conflict = assert_problem(await client.patch(url, json={"mood": 1}, headers=stale), 412)
    assert conflict["current"] == edited
    # The same edit resent after a lost answer: nothing to do, answered with the entry.
    resent = await client.patch(url, json={"mood": 6}, headers=stale)
    assert resent.status_code == 200
    assert (resent.json(), resent.headers["etag"]) == (edited, '"2"')
    refused = assert_problem(await client.delete(url, headers=stale), 412)
    assert refused["current"] == edited
    assert await current(client, patient, "checkins", checkin["id"]) == edited


async def test_an_atomic_batch_still_stops_at_the_first_conflict(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    edited = await edit(client, patient, "checkins", checkin, {"mood": 9})
    response = await client.post(
        "/v1/sync",
        json={
            "atomic": True,
            "operations": [
                created("checkins", new_id(), mood=1),
                deleted("checkins", checkin["id"], 1),
            ],
        },
        headers={**patient.headers, "Idempotency-Key": new_id()},
    )
    problem = assert_problem(response, 412)
    assert (problem["operation"], problem["current"]) == (1, edited)
    assert await list_ids(client, patient, "checkins") == {checkin["id"]}


async def test_operations_that_cannot_apply_are_rejected_one_by_one(
    client: httpx.AsyncClient, patient: Person
) -> None:
    other = await register(client, "patient")
    theirs = await create(client, other, "checkins", mood=2)
    checkin = await create(client, patient, "checkins", mood=3)

    results = await push(
        client,
        patient,
        {"op": "update", "resource": "checkins", "id": checkin["id"], "data": {"mood": 4}},
        updated("checkins", new_id(), 1, mood=4),
        created("checkins", theirs["id"], mood=2),
        updated("checkins", theirs["id"], 1, mood=9),
    )

    assert [(r["outcome"], r["status"]) for r in results] == [
        ("rejected", 428),
        ("rejected", 404),
        ("rejected", 409),
        ("rejected", 404),
    ]
    assert all(r["current"] is None for r in results)  # nothing of theirs shows
    assert (await current(client, other, "checkins", theirs["id"]))["mood"] == 2


async def test_a_phq9_pushed_offline_brings_its_safety_flag_on_the_next_pull(
    client: httpx.AsyncClient, patient: Person
) -> None:
    cursor = (await pull(client, patient, "0"))["next_cursor"]
    assessment = new_id()

    (result,) = await push(
        client,
        patient,
        created("assessments", assessment, instrument="phq9", answers=phq9(12, item9=1)),
    )

    assert result["outcome"] == "applied"
    (pulled,) = (await pull(client, patient, cursor))["changes"]["assessments"]
    assert (pulled["id"], pulled["safety_flag"]) == (assessment, True)
    assert pulled["crisis_resources"]


async def test_an_update_or_delete_without_an_id_is_a_malformed_batch(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/sync",
        json={"operations": [{"op": "delete", "resource": "checkins", "if_match": '"1"'}]},
        headers={**patient.headers, "Idempotency-Key": new_id()},
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"][:3] == ["body", "operations", 0]
