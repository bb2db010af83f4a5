"""Erasure racing the patient's own writes, on PostgreSQL: it wins or loses cleanly.

`DELETE /v1/me` sent among many concurrent writes of the same patient completes (no deadlock),
and every racing request answers 2xx (it came first) or 401 (it came after): never a 5xx, and
nothing of the patient is left. Several rounds, since a race shows itself only sometimes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from api.resources import RESOURCES
from tests.conftest import make_settings
from tests.support.journal import body_for, create
from tests.support.people import PASSWORD, register

pytestmark = pytest.mark.postgres_only

ROUNDS = 5
WRITERS = 24
BOUND = 60.0  # a bound on the whole round, not an expectation


@pytest.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> AsyncIterator[FastAPI]:
    """The suite's app, but one caller may have every writer in flight at once: the race is
    the point here, and the per-caller share (which would answer some of them 429) has tests
    of its own."""
    settings = make_settings(
        tmp_path_factory.mktemp("data"), database_url, max_requests_per_caller=WRITERS + 1
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def leftovers(app: FastAPI, owner_id: str) -> dict[str, int]:
    """Rows anywhere that still name the erased patient."""
    tables = [resource.model.__tablename__ for resource in RESOURCES]
    counts: dict[str, int] = {}
    async with app.state.engine.connect() as connection:
        for table in [*tables, "tombstones", "change_counters", "idempotency_records"]:
            counts[table] = (
                await connection.execute(
                    text(f"SELECT count(*) FROM {table} WHERE owner_id = :owner"),  # noqa: S608
                    {"owner": uuid.UUID(owner_id)},
                )
            ).scalar_one()
        await connection.rollback()
    return {table: count for table, count in counts.items() if count}


@pytest.mark.parametrize("round_number", range(ROUNDS))
async def test_erasure_among_concurrent_writes_wins_or_loses_cleanly(
    app: FastAPI, client: httpx.AsyncClient, round_number: int
) -> None:
    patient = await register(client)
    session = await create(client, patient, "sessions")
    checkins = [await create(client, patient, "checkins") for _ in range(4)]

    async def write(i: int) -> httpx.Response:
        kind = i % 4
        if kind == 0:
            return await client.post(
                "/v1/checkins",
                json=body_for("checkins"),
                headers={**patient.headers, "Idempotency-Key": f"k-{round_number}-{i}"},
            )
        if kind == 1:
            return await client.post(
                "/v1/reflections",
                json=body_for("reflections", session_id=session["id"]),
                headers=patient.headers,
            )
        if kind == 2:
            entry = checkins[i % len(checkins)]
            return await client.patch(
                f"/v1/checkins/{entry['id']}",
                json={"mood": 3},
                headers={**patient.headers, "If-Match": f'"{entry["version"]}"'},
            )
        return await client.post("/v1/checkins", json=body_for("checkins"), headers=patient.headers)

    async def erase() -> httpx.Response:
        return await client.request(
            "DELETE", "/v1/me", json={"password": PASSWORD}, headers=patient.headers
        )

    racing = (
        [write(i) for i in range(WRITERS // 2)]
        + [erase()]
        + [write(i) for i in range(WRITERS // 2, WRITERS)]
    )
    answers = await asyncio.wait_for(asyncio.gather(*racing), BOUND)
    erased = answers[WRITERS // 2]
    writes = answers[: WRITERS // 2] + answers[WRITERS // 2 + 1 :]

    assert erased.status_code == 204, erased.text
    unexpected = [
        (a.request.method, a.request.url.path, a.status_code, a.text)
        for a in writes
        # 412: an edit that lost to another edit of the same version, as without erasure.
        if a.status_code not in (200, 201, 401, 412)
    ]
    assert unexpected == []
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 401
    assert await leftovers(app, patient.id) == {}
