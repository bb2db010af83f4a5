"""The patient's rights: a full export (JSON and FHIR R4) and erasure that leaves nothing behind."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Connection, Text, cast, column, func, inspect, or_, select, table

from api.models import Erasure
from tests.support.entries import RESOURCES, body
from tests.support.people import PASSWORD, Person, register
from tests.support.sharing import bearer, give_grant, mint

CANARY = "heron-canary-2b7e"


async def a_full_journal(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> dict[str, Any]:
    session = (
        await client.post("/v1/sessions", headers=patient.headers, json=body("sessions"))
    ).json()
    made = {"sessions": [session["id"]]}
    intention = await client.post(
        "/v1/intentions",
        headers=patient.headers,
        json={"text": f"intent {CANARY}", "session_id": session["id"]},
    )
    made["intentions"] = [intention.json()["id"]]
    reflections = [
        await client.post(
            "/v1/reflections",
            headers=patient.headers,
            json=body(
                "reflections",
                text=f"reflect {CANARY}",
                session_id=session["id"],
                private=private,
            ),
        )
        for private in (False, True)
    ]
    made["reflections"] = [r.json()["id"] for r in reflections]
    made["checkins"] = [
        (
            await client.post(
                "/v1/checkins", headers=patient.headers, json={"mood": m, "note": CANARY}
            )
        ).json()["id"]
        for m in (2, 7)
    ]
    made["assessments"] = [
        (await client.post("/v1/assessments", headers=patient.headers, json=answers)).json()["id"]
        for answers in (
            {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 1]},
            {"instrument": "gad7", "answers": [2, 2, 2, 2, 2, 2, 2]},
            {"instrument": "pcl5", "answers": [2] * 20},
        )
    ]
    grant = await give_grant(client, patient, therapist, ["checkins:read"])
    token = await mint(client, therapist, grant["id"])
    await client.get(f"/v1/patients/{patient.id}/checkins", headers=bearer(token))
    await client.get(f"/v1/patients/{patient.id}/reflections", headers=bearer(token))
    return {"ids": made, "grant": grant, "token": token}


async def test_the_json_export_holds_everything(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    journal = await a_full_journal(client, patient, therapist)
    response = await client.get("/v1/me/export", headers=patient.headers)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    export = response.json()
    assert export["format"] == "kap-journal-export/1"
    assert export["account"]["email"] == patient.email
    for resource in RESOURCES:
        assert sorted(e["id"] for e in export[resource]) == sorted(journal["ids"][resource]), (
            resource
        )
    assert any(r["private"] for r in export["reflections"]), (
        "private entries belong in your own copy"
    )
    assert export["reflections"][0]["text"] == f"reflect {CANARY}"
    assert {a["total"] for a in export["assessments"]} == {9, 14, 40}
    assert [g["id"] for g in export["grants"]] == [journal["grant"]["id"]]
    assert [(e["resource"], e["outcome"]) for e in export["access_log"]] == [
        ("grant", "allowed"),  # the therapist opened the journal (minted a read token)
        ("checkins", "allowed"),
        ("reflections", "insufficient_scope"),
    ]


async def test_therapists_have_no_journal_to_export(
    client: httpx.AsyncClient, therapist: Person
) -> None:
    assert (await client.get("/v1/me/export", headers=therapist.headers)).status_code == 403


async def rows_naming(app: FastAPI, needles: list[str]) -> dict[str, int]:
    """How many rows of each table name one of ``needles``, in any column.

    Every table of the database as it stands is searched (reflected, not taken from the models,
    so a table a new migration adds is searched too), and every column of it, read as text: ids
    are looked for with and without dashes (SQLite keeps a UUID as 32 hex digits, PostgreSQL
    prints it with dashes), in key columns, JSON and free text alike."""

    def tables(connection: Connection) -> dict[str, list[str]]:
        inspector = inspect(connection)
        return {
            name: [c["name"] for c in inspector.get_columns(name)]
            for name in inspector.get_table_names()
        }

    found: dict[str, int] = {}
    async with app.state.engine.connect() as connection:
        for name, columns in (await connection.run_sync(tables)).items():
            searched = table(name, *(column(c) for c in columns))
            mentions = [
                cast(c, Text).contains(needle, autoescape=True)
                for c in searched.c
                for needle in needles
            ]
            hits = await connection.scalar(
                select(func.count()).select_from(searched).where(or_(*mentions))
            )
            if hits:
                found[name] = hits
    return found


# What the journal below leaves about the patient; each must be found before the erasure (so
# the search is seen to reach it) and none after. A table the walk reaches but this list does
# not name is still searched after the erasure. (Refresh tokens name their login, not the
# patient: that they are refused after the erasure is checked through the API below.)
PATIENT_TABLES = {
    "accounts",
    "logins",
    "dosing_sessions",
    "intentions",
    "reflections",
    "checkins",
    "assessments",
    "tombstones",
    "change_counters",
    "idempotency_records",
    "grants",
    "audit_records",
}


async def test_erasure_leaves_nothing_of_the_patient(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    journal = await a_full_journal(client, patient, therapist)
    # What the journal leaves besides its entries: a deleted entry's tombstone, and the stored
    # answer of a request sent with an Idempotency-Key.
    gone = (await client.post("/v1/checkins", headers=patient.headers, json={"mood": 1})).json()
    deleted = await client.delete(
        f"/v1/checkins/{gone['id']}", headers={**patient.headers, "If-Match": '"1"'}
    )
    assert deleted.status_code == 204
    keyed = await client.post(
        "/v1/checkins",
        headers={**patient.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"mood": 4},
    )
    assert keyed.status_code == 201
    needles = [patient.id, patient.id.replace("-", ""), patient.email, CANARY]
    before = await rows_naming(app, needles)
    assert set(before) >= PATIENT_TABLES, PATIENT_TABLES - set(before)
    async with app.state.sessionmaker() as session:
        erasures_before = await session.scalar(select(func.count()).select_from(Erasure))

    wrong = await client.request(
        "DELETE", "/v1/me", json={"password": "not my password"}, headers=patient.headers
    )
    assert wrong.status_code == 403
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200

    erased = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=patient.headers
    )
    assert erased.status_code == 204

    # Nobody can read anything of the patient any more, by any door.
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 401
    assert (await client.get("/v1/checkins", headers=patient.headers)).status_code == 401
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": patient.refresh_token},
    )
    assert refreshed.status_code == 400
    signed_in = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email, "password": PASSWORD},
    )
    assert signed_in.status_code == 400
    read = await client.get(f"/v1/patients/{patient.id}/checkins", headers=bearer(journal["token"]))
    assert read.status_code == 401
    assert (await client.get("/v1/patients", headers=therapist.headers)).json()["items"] == []
    assert (await client.get("/v1/grants", headers=therapist.headers)).json()["items"] == []
    # In the database: no row holds the patient's id, email or words; one erasure is recorded.
    assert await rows_naming(app, needles) == {}
    async with app.state.sessionmaker() as session:
        assert (
            await session.scalar(select(func.count()).select_from(Erasure))
            == (erasures_before or 0) + 1
        )
    # The email is free again.
    again = await client.post(
        "/v1/accounts",
        json={
            "email": patient.email,
            "password": PASSWORD,
            "display_name": "New",
            "role": "patient",
        },
    )
    assert again.status_code == 201
    assert again.json()["id"] != patient.id


async def test_erasing_a_therapist_keeps_the_patients_access_log(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    await a_full_journal(client, patient, therapist)
    assert (
        await client.request(
            "DELETE", "/v1/me", json={"password": PASSWORD}, headers=therapist.headers
        )
    ).status_code == 204
    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert len(log) == 3  # the journal opened, then two reads
    assert all(entry["therapist_name"] is None for entry in log)
    assert "whose account was deleted" in log[0]["description"]
    assert (await client.get("/v1/grants", headers=patient.headers)).json()["items"] == []


async def test_erasure_needs_the_password_field(client: httpx.AsyncClient) -> None:
    person = await register(client)
    response = await client.request("DELETE", "/v1/me", json={}, headers=person.headers)
    assert response.status_code == 422
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert uuid.UUID(person.id)


async def test_the_export_holds_sign_ins_deletions_and_stored_answers_but_no_secret(
    client: httpx.AsyncClient, patient: Person
) -> None:
    # A refresh sent with an Idempotency-Key keeps its answer (the new pair) for a replay.
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": patient.refresh_token},
        headers={"Idempotency-Key": "refresh-1"},
    )
    assert refreshed.status_code == 200
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    kept = await client.post(
        "/v1/checkins", json=body("checkins"), headers={**headers, "Idempotency-Key": "kept-1"}
    )
    gone = await client.post("/v1/checkins", json=body("checkins"), headers=headers)
    deleted = await client.delete(
        f"/v1/checkins/{gone.json()['id']}", headers={**headers, "If-Match": '"1"'}
    )
    assert deleted.status_code == 204

    response = await client.get("/v1/me/export", headers=headers)
    export = response.json()
    [sign_in] = export["sign_ins"]
    assert sign_in["client"] == "app"
    assert sign_in["ended_at"] is None
    assert [r["used_at"] is not None for r in sign_in["refreshes"]] == [True, False]
    assert [(d["id"], d["resource"]) for d in export["deletions"]] == [
        (gone.json()["id"], "checkins")
    ]
    assert datetime.fromisoformat(export["deletions"][0]["deleted_at"]).tzinfo is not None
    by_key = {answer["idempotency_key"]: answer for answer in export["stored_answers"]}
    assert set(by_key) == {"refresh-1", "kept-1"}
    # The token answer is listed, its credentials withheld: an export is no way into the account.
    tokens = by_key["refresh-1"]["answer"]
    assert (tokens["access_token"], tokens["refresh_token"]) == ("(withheld: a credential)",) * 2
    assert tokens["token_type"] == refreshed.json()["token_type"]
    answer = by_key["kept-1"]
    assert answer["status"] == 201
    assert answer["answer"] == kept.json()
    # Never a hash or a secret: no token, no fingerprint, no password hash.
    text_of_export = response.text
    new_pair = refreshed.json()
    for secret in (
        patient.refresh_token,
        new_pair["refresh_token"],
        new_pair["access_token"],
        "argon2",
    ):
        assert secret not in text_of_export
    assert "fingerprint" not in text_of_export
    assert "hash" not in text_of_export
