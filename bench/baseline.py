"""The raw baseline: Starlette and an asyncpg pool, no ORM, no validation, the same SQL.

What it does per request, and nothing more:

* ``POST /v1/checkins``: the JSON body as sent, the owner read from the bearer token's payload
  *without* checking its signature, and one statement that takes the owner's next change number
  (the same ``change_counters`` upsert the service makes) and inserts the check-in with it. The
  note is stored as sent (the service encrypts it). Answers 201 with the row.
* ``GET /v1/checkins?limit=50``: the owner's newest ``limit`` check-ins (one row more, to know
  whether a next page exists), as the service pages them: ``recorded_at DESC, id DESC``.
* ``GET /v1/patients/{patient_id}/checkins?limit=50``: the same select without private entries.
  No token, grant or audit: the service's extra work on this route is what the ratio shows.

Run: ``uvicorn bench.baseline:app`` with ``BENCH_BASELINE_DSN`` (``postgresql://...``) and
``BENCH_BASELINE_POOL_SIZE`` (connections per process) in the environment.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

INSERT_CHECKIN = """
WITH counter AS (
    INSERT INTO change_counters (owner_id, last_seq) VALUES ($2, 1)
    ON CONFLICT (owner_id) DO UPDATE SET last_seq = change_counters.last_seq + 1
    RETURNING last_seq
)
INSERT INTO checkins (id, owner_id, private, version, seq, recorded_at, mood, anxiety, energy,
                      sleep_hours, note, backfilled, created_at, updated_at)
SELECT $1, $2, $3, 1, counter.last_seq, $4, $5, $6, $7, $8, $9, false, $4, $4 FROM counter
"""
LATEST = """
SELECT id, private, version, created_at, updated_at, recorded_at, backfilled,
       mood, anxiety, energy, sleep_hours, note
FROM checkins WHERE owner_id = $1
ORDER BY recorded_at DESC, id DESC LIMIT $2
"""
LATEST_SHARED = """
SELECT id, private, version, created_at, updated_at, recorded_at, backfilled,
       mood, anxiety, energy, sleep_hours, note
FROM checkins WHERE owner_id = $1 AND private IS false
ORDER BY recorded_at DESC, id DESC LIMIT $2
"""


def owner_from_token(request: Request) -> uuid.UUID:
    """The token's ``sub``, read without verifying anything: the baseline trusts its caller."""
    token = request.headers["authorization"].split(" ", 1)[1]
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return uuid.UUID(claims["sub"])


def json(body: Any, status_code: int = 200) -> Response:
    # default=str: asyncpg's own UUID type is a subclass orjson leaves to the default.
    content = orjson.dumps(body, default=str)
    return Response(content, status_code=status_code, media_type="application/json")


def cursor_of(row: asyncpg.Record) -> str:
    raw = f"{row['recorded_at'].astimezone(UTC).isoformat()}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def as_item(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    item["received_at"] = item["created_at"]
    return item


async def create_checkin(request: Request) -> Response:
    body = orjson.loads(await request.body())
    owner_id = owner_from_token(request)
    entry_id = uuid.UUID(body["id"]) if body.get("id") else uuid.uuid4()
    now = datetime.now(UTC)
    values = (
        body.get("private", False),
        now,
        body["mood"],
        body.get("anxiety"),
        body.get("energy"),
        body.get("sleep_hours"),
        body.get("note"),
    )
    await request.app.state.pool.execute(INSERT_CHECKIN, entry_id, owner_id, *values)
    item = {
        "id": entry_id,
        "private": values[0],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "recorded_at": now,
        "backfilled": False,
        "mood": values[2],
        "anxiety": values[3],
        "energy": values[4],
        "sleep_hours": values[5],
        "note": values[6],
        "received_at": now,
    }
    return json(item, 201)


async def page(request: Request, owner_id: uuid.UUID, statement: str) -> Response:
    limit = int(request.query_params.get("limit", "50"))
    rows = await request.app.state.pool.fetch(statement, owner_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_of(rows[-1]) if more else None
    return json({"items": [as_item(row) for row in rows], "next_cursor": next_cursor})


async def list_checkins(request: Request) -> Response:
    return await page(request, owner_from_token(request), LATEST)


async def list_shared_checkins(request: Request) -> Response:
    return await page(request, uuid.UUID(request.path_params["patient_id"]), LATEST_SHARED)


async def healthz(_request: Request) -> Response:
    return json({"status": "ok"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_BASELINE_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(
        os.environ["BENCH_BASELINE_DSN"], min_size=size, max_size=size
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/v1/checkins", create_checkin, methods=["POST"]),
        Route("/v1/checkins", list_checkins, methods=["GET"]),
        Route("/v1/patients/{patient_id}/checkins", list_shared_checkins, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
)
