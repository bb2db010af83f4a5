"""How long stored answers to Idempotency-Key are kept: a set time (swept in the background, a
bounded batch per sweep), and never longer than the entry, grant or account they answered for."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from api.app import create_app
from api.journal.idempotency import sweep_expired
from api.models import IdempotencyRecord
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.entries import body
from tests.support.people import PASSWORD, Person
from tests.support.sharing import ALL_SCOPES

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
BOUND = 30.0  # a bound on a wait, not an expectation


async def stored(app: FastAPI, person: Person, keys: list[str]) -> int:
    async with app.state.sessionmaker() as session:
        count: int = await session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(
                IdempotencyRecord.owner_id == uuid.UUID(person.id),
                IdempotencyRecord.key.in_(keys),
            )
        )
        return count


async def post_with_keys(client: httpx.AsyncClient, person: Person, keys: list[str]) -> list[str]:
    ids = []
    for key in keys:
        made = await client.post(
            "/v1/checkins",
            json=body("checkins"),
            headers={**person.headers, "Idempotency-Key": key},
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


async def backdate(app: FastAPI, person: Person, to: datetime) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.owner_id == uuid.UUID(person.id))
            .values(created_at=to)
        )


async def test_expired_records_are_swept_a_bounded_batch_at_a_time(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    keys = [f"old-{uuid.uuid4()}" for _ in range(3)]
    await post_with_keys(client, patient, keys)
    await backdate(app, patient, LONG_AGO)
    cutoff = datetime(2000, 6, 1, tzinfo=UTC)  # only records older than this: ours
    assert await sweep_expired(app.state.sessionmaker, cutoff, batch=2) == 2
    assert await stored(app, patient, keys) == 1
    assert await sweep_expired(app.state.sessionmaker, cutoff, batch=2) == 1
    assert await stored(app, patient, keys) == 0
    # A resend after expiry is a new request: it writes (the phone was away too long).
    resent = await client.post(
        "/v1/checkins",
        json=body("checkins"),
        headers={**patient.headers, "Idempotency-Key": keys[0]},
    )
    assert resent.status_code == 201
    assert "idempotent-replayed" not in resent.headers


async def test_each_process_sweeps_in_the_background(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, tmp_path: Path, settings: Settings
) -> None:
    keys = [f"old-{uuid.uuid4()}"]
    await post_with_keys(client, patient, keys)
    await backdate(app, patient, LONG_AGO)
    # Another process of the same deployment, with the default time to live (24 hours).
    other = create_app(make_settings(tmp_path, settings.database_url))
    async with other.router.lifespan_context(other):
        async with asyncio.timeout(BOUND):
            while True:
                if await stored(app, patient, keys) == 0:
                    break
                await asyncio.sleep(0.05)  # the sweep runs on its own: wait for it, bounded
    assert await stored(app, patient, keys) == 0


async def test_a_stored_answer_goes_with_its_entry(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    keys = [f"k-{uuid.uuid4()}", f"k-{uuid.uuid4()}"]
    ids = await post_with_keys(client, patient, keys)
    deleted = await client.delete(
        f"/v1/checkins/{ids[0]}", headers={**patient.headers, "If-Match": '"1"'}
    )
    assert deleted.status_code == 204
    assert await stored(app, patient, keys[:1]) == 0
    assert await stored(app, patient, keys[1:]) == 1  # the other entry's answer stays


async def test_a_grants_stored_answer_goes_with_the_therapists_account(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    key = f"grant-{uuid.uuid4()}"
    given = await client.post(
        "/v1/grants",
        json={"therapist_email": therapist.email, "scopes": ALL_SCOPES},
        headers={**patient.headers, "Idempotency-Key": key},
    )
    assert given.status_code == 201, given.text
    assert await stored(app, patient, [key]) == 1
    erased = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=therapist.headers
    )
    assert erased.status_code == 204
    # The answer named the therapist (their email): it is gone with them.
    assert await stored(app, patient, [key]) == 0


async def test_records_are_kept_for_a_day_by_default(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).idempotency_ttl_hours == 24
