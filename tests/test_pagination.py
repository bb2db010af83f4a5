"""Keyset paging over a long history while new entries keep arriving."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from api.models import ChangeCounter, Checkin
from tests.support.people import Person, register

HISTORY = 10_000


async def seed_checkins(app: FastAPI, owner: str, count: int) -> set[str]:
    """Write a long history straight to the database: the API would take minutes for this."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=400)
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        # Deliberately many identical times, so paging must break ties by id.
        at = start + timedelta(minutes=rng.randrange(0, 400 * 24 * 60, 7))
        rows.append(
            {
                "id": uuid.uuid4(),
                "owner_id": uuid.UUID(owner),
                "recorded_at": at,
                "mood": rng.randrange(11),
                "seq": n + 1,
                "version": 1,
                "private": False,
                "backfilled": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(insert(Checkin), rows)
        await session.execute(
            insert(ChangeCounter).values(owner_id=uuid.UUID(owner), last_seq=count)
        )
    return {str(row["id"]) for row in rows}


async def test_paging_10000_check_ins_while_new_ones_arrive(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    patient: Person = await register(client)
    existing = await seed_checkins(app, patient.id, HISTORY)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    arrivals = 0
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/checkins", params=params, headers=patient.headers)
        assert page.status_code == 200
        items = page.json()["items"]
        times = [(item["recorded_at"], item["id"]) for item in items]
        assert times == sorted(times, reverse=True)
        seen.extend(item["id"] for item in items)
        pages += 1
        # Between pages the phone keeps writing: one now, one backfilled into the history.
        for recorded_at in (
            datetime.now(UTC),
            datetime.now(UTC) - timedelta(days=random.randrange(1, 400)),
        ):
            response = await client.post(
                "/v1/checkins",
                json={"mood": 5, "recorded_at": recorded_at.isoformat()},
                headers=patient.headers,
            )
            assert response.status_code == 201
            arrivals += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert existing <= set(seen), (
        f"{len(existing - set(seen))} rows that existed when paging began were skipped"
    )
    assert pages >= HISTORY // 200
    print(f"paged {len(seen)} check-ins in {pages} pages with {arrivals} arriving meanwhile")


async def test_every_list_refuses_a_cursor_it_did_not_make(client: httpx.AsyncClient) -> None:
    """One cursor parser for every list: a made-up or empty cursor is a 400 problem that names
    the parameter, never the first page again (the last page's ``next_cursor`` is null, not "")."""
    patient: Person = await register(client)
    for path in ("/v1/checkins", "/v1/grants", "/v1/me/access-log"):
        first = await client.get(path, headers=patient.headers)
        assert first.status_code == 200, path
        for cursor in ("", "garbage", "bm90fGEtY3Vyc29y"):
            response = await client.get(path, params={"cursor": cursor}, headers=patient.headers)
            assert response.status_code == 400, (path, cursor, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert "`cursor`" in response.json()["detail"]
