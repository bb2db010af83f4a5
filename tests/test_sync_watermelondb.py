"""/v1/sync/watermelondb speaks WatermelonDB's sync protocol, on the rules of POST /v1/sync."""

from __future__ import annotations

import json
from typing import Any

import httpx

from api.resources import RESOURCES
from api.sync.watermelondb import columns
from tests.support.journal import Json, assert_problem, create, edit, new_id, phq9, remove
from tests.support.people import Person

TABLES = [resource.name for resource in RESOURCES]
PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
}


async def wm_pull(client: httpx.AsyncClient, person: Person, last_pulled_at: int | None) -> Json:
    params = {} if last_pulled_at is None else {"last_pulled_at": str(last_pulled_at)}
    response = await client.get("/v1/sync/watermelondb", params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def wm_push(
    client: httpx.AsyncClient, person: Person, last_pulled_at: int, changes: dict[str, Any]
) -> Json:
    response = await client.post(
        "/v1/sync/watermelondb",
        json={"last_pulled_at": last_pulled_at, "changes": changes},
        headers=person.headers,
    )
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def ids(pull: Json, table: str, kind: str) -> set[str]:
    return {r if kind == "deleted" else r["id"] for r in pull["changes"][table][kind]}


async def test_a_first_pull_is_every_entry_created_with_a_non_zero_timestamp(
    client: httpx.AsyncClient, patient: Person
) -> None:
    empty = await wm_pull(client, patient, None)
    assert empty["timestamp"] == 1  # never 0, which WatermelonDB refuses
    assert set(empty["changes"]) == set(TABLES)
    assert all(empty["changes"][t] == {"created": [], "updated": [], "deleted": []} for t in TABLES)

    reflection = await create(client, patient, "reflections", emotions=["calm"])
    await edit(client, patient, "reflections", reflection, {"text": "Edited"})
    pulled = await wm_pull(client, patient, None)
    (raw,) = pulled["changes"]["reflections"]["created"]
    assert pulled["timestamp"] == 3
    # The column types a WatermelonDB schema allows: numbers for times, text for lists.
    assert isinstance(raw["written_at"], int)
    assert isinstance(raw["created_at"], int)
    assert json.loads(raw["emotions"]) == ["calm"]
    assert raw["text"] == "Edited"
    for name, (kind, _encoding, optional) in columns(RESOURCES[2]).items():
        value = raw[name]
        expected = PYTHON_TYPES[kind]
        assert isinstance(value, expected) or (optional and value is None), name


async def test_later_pulls_tell_created_updated_and_deleted_apart_each_id_once(
    client: httpx.AsyncClient, patient: Person
) -> None:
    kept = await create(client, patient, "checkins", mood=3)
    doomed = await create(client, patient, "checkins", mood=4)
    first = await wm_pull(client, patient, None)

    new = await create(client, patient, "checkins", mood=5)
    await edit(client, patient, "checkins", kept, {"mood": 6})
    await remove(client, patient, "checkins", doomed)
    later = await wm_pull(client, patient, first["timestamp"])

    assert ids(later, "checkins", "created") == {new["id"]}
    assert ids(later, "checkins", "updated") == {kept["id"]}
    assert ids(later, "checkins", "deleted") == {doomed["id"]}
    nothing = await wm_pull(client, patient, later["timestamp"])
    assert nothing["timestamp"] == later["timestamp"]
    assert all(not any(nothing["changes"][t].values()) for t in TABLES)


async def test_a_push_as_watermelondb_sends_it_applies_each_record_on_its_own(
    client: httpx.AsyncClient, patient: Person
) -> None:
    session = await create(client, patient, "sessions")
    start = (await wm_pull(client, patient, None))["timestamp"]
    await remove(client, patient, "sessions", session)  # on the other phone
    good, bad, intention, flagged, never = new_id(), new_id(), new_id(), new_id(), new_id()
    # WatermelonDB's own columns, and columns the server assigns: ignored.
    row = {"_status": "created", "_changed": "", "version": 7, "created_at": 1}

    result = await wm_push(
        client,
        patient,
        start,
        {
            "checkins": {
                "created": [
                    {**row, "id": good, "mood": 6, "note": None, "backfilled": True},
                    {**row, "id": bad, "mood": 11},
                ],
                "deleted": [never],  # created and deleted offline: nothing to do
            },
            "intentions": {
                "created": [{**row, "id": intention, "text": "Rest", "session_id": session["id"]}]
            },
            "assessments": {
                "created": [
                    {
                        **row,
                        "id": flagged,
                        "instrument": "phq9",
                        "answers": json.dumps(phq9(9, item9=2)),
                    }
                ]
            },
        },
    )

    assert result["experimentalRejectedIds"] == {"checkins": [bad]}
    outcomes = {r["id"]: r["outcome"] for t in result["results"].values() for r in t}
    assert outcomes == {
        good: "applied",
        bad: "rejected",
        never: "replayed",
        intention: "applied",
        flagged: "applied",
    }
    (note,) = result["results"]["intentions"][0]["notes"]
    assert "session_id cleared" in note
    pulled = await wm_pull(client, patient, start)
    (checkin,) = pulled["changes"]["checkins"]["created"]
    assert (checkin["id"], checkin["version"], checkin["backfilled"]) == (good, 1, False)
    (assessment,) = pulled["changes"]["assessments"]["created"]
    assert assessment["safety_flag"] is True
    assert json.loads(assessment["crisis_resources"])


async def test_conflicts_come_from_last_pulled_at_and_a_delete_keeps_a_later_edit(
    client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=3)
    intention = await create(client, patient, "intentions")
    pulled = (await wm_pull(client, patient, None))["timestamp"]
    edited = await edit(client, patient, "checkins", checkin, {"mood": 9})  # the other phone
    await edit(client, patient, "intentions", intention, {"status": "archived"})

    result = await wm_push(
        client,
        patient,
        pulled,
        {
            "checkins": {"deleted": [checkin["id"]]},
            "intentions": {
                "updated": [
                    {
                        "id": intention["id"],
                        "text": "Changed here",
                        "status": "active",
                        "_status": "updated",
                        "_changed": "text",
                    }
                ]
            },
        },
    )

    assert result["experimentalRejectedIds"] == {
        "checkins": [checkin["id"]],
        "intentions": [intention["id"]],
    }
    (conflict,) = result["results"]["checkins"]
    assert (conflict["outcome"], conflict["current"]) == ("conflict", edited)
    # After pulling again, the same changes go through: made against what the phone now holds.
    again = await wm_pull(client, patient, pulled)
    retried = await wm_push(
        client,
        patient,
        again["timestamp"],
        {
            "intentions": {
                "updated": [{"id": intention["id"], "text": "Changed here", "_changed": "text"}]
            }
        },
    )
    assert retried["experimentalRejectedIds"] == {}
    got = (await client.get(f"/v1/intentions/{intention['id']}", headers=patient.headers)).json()
    assert (got["text"], got["status"]) == ("Changed here", "archived")  # each column kept


async def test_a_push_needs_last_pulled_at_and_bad_ids_are_rejected_alone(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/sync/watermelondb",
        json={"last_pulled_at": None, "changes": {}},
        headers=patient.headers,
    )
    assert_problem(response, 400)
    good = new_id()
    result = await wm_push(
        client,
        patient,
        1,
        {"checkins": {"created": [{"id": "abc", "mood": 3}, {"id": good, "mood": 4}]}},
    )
    assert result["experimentalRejectedIds"] == {"checkins": ["abc"]}
    assert "UUID" in result["results"]["checkins"][0]["problem"]["detail"]
