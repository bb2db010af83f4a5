"""Stored answers as the patient's export lists them (oldest first, and in the order of their
keys when several were stored in the same instant), and the sweep that forgets expired ones."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.journal.idempotency import sweep_expired, sweep_forever
from api.models import IdempotencyRecord
from api.settings import Settings
from tests.support.clock import Clock
from tests.support.journal import body_for
from tests.support.people import Person, token

BOUND = 20.0  # a bound on the wait for the sweep, not an expectation


async def test_the_export_lists_stored_answers_oldest_first_then_by_key(
    client: httpx.AsyncClient, patient: Person, clock: Clock
) -> None:
    async def write(key: str) -> None:
        response = await client.post(
            "/v1/checkins",
            json=body_for("checkins"),
            headers={**patient.headers, "Idempotency-Key": key},
        )
        assert response.status_code == 201, response.text

    await write("m-first")
    clock.move(timedelta(seconds=1))
    for key in ("z-same-instant", "a-same-instant", "k-same-instant"):
        await write(key)
    export = await client.get("/v1/me/export", headers=patient.headers)
    assert [answer["idempotency_key"] for answer in export.json()["stored_answers"]] == [
        "m-first",
        "a-same-instant",
        "k-same-instant",
        "z-same-instant",
    ]


async def test_the_background_sweep_forgets_expired_answers_and_keeps_fresh_ones(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, patient: Person, clock: Clock
) -> None:
    """The sweep each process runs: an answer older than the replay window goes, one inside it
    stays. The test waits (bounded) for the first sweep to end, never for a time."""
    ttl = timedelta(hours=settings.idempotency_ttl_hours)

    async def write(headers: dict[str, str], key: str) -> None:
        response = await client.post(
            "/v1/checkins", json=body_for("checkins"), headers={**headers, "Idempotency-Key": key}
        )
        assert response.status_code == 201, response.text

    async def stored(headers: dict[str, str]) -> list[str]:
        export = await client.get("/v1/me/export", headers=headers)
        return [answer["idempotency_key"] for answer in export.json()["stored_answers"]]

    await write(patient.headers, "expired")
    clock.move(ttl + timedelta(minutes=1))
    now = {"Authorization": f"Bearer {(await token(client, patient.email))['access_token']}"}
    await write(now, "fresh")
    swept = asyncio.Event()

    @contextlib.asynccontextmanager
    async def watched() -> AsyncIterator[AsyncSession]:
        # The app's own sessions; the event tells that one sweep's transaction has ended.
        async with app.state.sessionmaker() as session:
            yield session
        swept.set()

    sessions = cast("async_sessionmaker[AsyncSession]", watched)
    sweeper = asyncio.create_task(sweep_forever(sessions, ttl, 1000, 3600.0))
    try:
        async with asyncio.timeout(BOUND):
            await swept.wait()
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    assert await stored(now) == ["fresh"]


async def test_a_sweep_takes_the_oldest_records_strictly_before_its_cutoff(
    client: httpx.AsyncClient, app: FastAPI, patient: Person
) -> None:
    """``sweep_expired`` at its edges: a record made exactly at the cut-off stays (only those
    made before it go), and a bounded batch takes the oldest first. The records' times are set
    far in the past, so that no other test's records are older."""
    keys = ["c-oldest", "b-middle", "a-newest"]  # the keys' order is the reverse of their times
    for key in keys:
        response = await client.post(
            "/v1/checkins",
            json=body_for("checkins"),
            headers={**patient.headers, "Idempotency-Key": key},
        )
        assert response.status_code == 201, response.text
    start = datetime(2000, 1, 1, tzinfo=UTC)
    owner = uuid.UUID(patient.id)
    sessions: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with sessions() as session, session.begin():
        for n, key in enumerate(keys):
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.owner_id == owner, IdempotencyRecord.key == key)
                .values(created_at=start + timedelta(seconds=n))
            )

    async def kept() -> set[str]:
        async with sessions() as session:
            found = await session.scalars(
                select(IdempotencyRecord.key).where(IdempotencyRecord.owner_id == owner)
            )
            return set(found)

    assert await sweep_expired(sessions, start + timedelta(seconds=1), batch=10) == 1
    assert await kept() == {"b-middle", "a-newest"}
    assert await sweep_expired(sessions, start + timedelta(hours=1), batch=1) == 1
    assert await kept() == {"a-newest"}


async def test_a_resend_whose_work_cannot_be_done_twice_is_answered_as_the_first_time(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """The first answer was lost, and the work it did cannot be done again: the pairing code it
    used is spent. The resend under the same key is not that refusal: it is the first answer,
    replayed. Without the key, the same request is the refusal itself."""
    made = await client.post("/v1/pairing-codes", headers=therapist.headers)
    assert made.status_code == 201, made.text
    body = {"pairing_code": made.json()["code"], "scopes": ["checkins:read"]}
    headers = {**patient.headers, "Idempotency-Key": "pair-once"}
    first = await client.post("/v1/grants", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/grants", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    plain = await client.post("/v1/grants", json=body, headers=patient.headers)
    assert plain.status_code == 404, plain.text


async def test_a_stored_answer_that_cannot_be_read_is_exported_as_null(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    """The export says "null if it cannot be read" (`StoredAnswer.answer`): an answer whose
    ciphertext no longer opens is null there, not an empty string or anything else."""
    response = await client.post(
        "/v1/checkins",
        json=body_for("checkins"),
        headers={**patient.headers, "Idempotency-Key": "unreadable"},
    )
    assert response.status_code == 201, response.text
    maker = cast(async_sessionmaker[AsyncSession], app.state.sessionmaker)
    async with maker() as session, session.begin():
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "unreadable")
            .values(body="not a sealed value")
        )
    export = await client.get("/v1/me/export", headers=patient.headers)
    assert export.status_code == 200, export.text
    [stored] = export.json()["stored_answers"]
    assert stored["idempotency_key"] == "unreadable"
    assert stored["answer"] is None
    assert stored["status"] == 201
