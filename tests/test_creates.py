"""``api.journal.creates``: a create written in one go answers as the separate steps did.

Its answer is made before the entry is written, so it must be the entry as a read shows it; and
its login is checked by the write itself, so a dead login must still be refused (401) before
anything else is, whatever else is wrong with the request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from api.journal.creates import in_one_write
from api.resources import RESOURCES as KINDS
from tests.conftest import SERVER_URL
from tests.support.entries import body
from tests.support.journal import new_id
from tests.support.people import Person, token

POSTGRES = SERVER_URL.startswith("postgresql")
ONE_WRITE = [resource.name for resource in KINDS if in_one_write(resource)]
AWAY = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("resource", ONE_WRITE)
async def test_the_answer_to_a_create_is_the_entry_as_read(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    times = {
        field: (datetime.now(UTC) - timedelta(hours=3)).astimezone(AWAY).isoformat()
        for field in ("started_at", "recorded_at")
        if field in body(resource)
    }
    made = await client.post(
        f"/v1/{resource}",
        json=body(resource, **times),
        headers={**patient.headers, "Idempotency-Key": new_id()},
    )
    assert made.status_code == 201, made.text
    read = await client.get(made.headers["location"], headers=patient.headers)
    assert made.json() == read.json()
    assert made.headers["etag"] == read.headers["etag"]


@pytest.mark.parametrize(
    ("sent", "headers"),
    [
        ({"mood": 11}, {}),  # refused by validation
        ({"mood": 5}, {"Idempotency-Key": ""}),  # a key refused
        ({"mood": 5, "id": "not-a-uuid"}, {}),
    ],
)
async def test_a_dead_login_is_refused_before_anything_else(
    client: httpx.AsyncClient, patient: Person, sent: dict[str, object], headers: dict[str, str]
) -> None:
    other = await token(client, patient.email)
    revoked = await client.post("/v1/auth/revoke", data={"token": patient.refresh_token})
    assert revoked.status_code == 200
    refused = await client.post("/v1/checkins", json=sent, headers={**patient.headers, **headers})
    assert refused.status_code == 401, refused.text
    listed = await client.get(
        "/v1/checkins", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert listed.json()["items"] == []


async def test_a_dead_login_is_refused_before_a_reference_is_checked(
    client: httpx.AsyncClient, patient: Person
) -> None:
    revoked = await client.post("/v1/auth/revoke", data={"token": patient.refresh_token})
    assert revoked.status_code == 200
    refused = await client.post(
        "/v1/reflections",
        json=body("reflections", session_id=new_id()),
        headers=patient.headers,
    )
    assert refused.status_code == 401, refused.text


async def test_a_keyed_create_is_one_statement_on_postgresql(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    seen: list[str] = []

    def ran(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", ran)
    try:
        made = await client.post(
            "/v1/checkins",
            json={"mood": 5},
            headers={**patient.headers, "Idempotency-Key": new_id()},
        )
    finally:
        event.remove(engine, "before_cursor_execute", ran)
    assert made.status_code == 201, made.text
    # SQLite: the login, the change number, the entry, the record, one after the other (and
    # the BEGIN IMMEDIATE of api.database).
    statements = [sql for sql in seen if not sql.startswith("BEGIN")]
    assert len(statements) == (1 if POSTGRES else 4), statements
