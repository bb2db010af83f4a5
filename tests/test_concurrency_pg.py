"""What only real concurrency on PostgreSQL can show: the sync cursor never skips a write that
commits late, concurrent creates are all seen, an Idempotency-Key races to one row, two edits
from the same version cannot both win, and one refresh token sent twice is exchanged once.

Where two requests must be in flight at the same moment, a transaction of the test's own holds
the patient's change counter row (see ``api.models.sync``), and the test waits, bounded, until
PostgreSQL reports the requests as waiting for a lock; only then does it let go. Nothing here
asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.service import hash_refresh_token
from api.journal.repository import EntryRepository, Scope, next_seq
from api.models import Checkin, DosingSession, Login, RefreshToken
from api.resources import RESOURCES
from tests.support.journal import (
    RESOURCE_NAMES,
    Json,
    body_for,
    changed_ids,
    create,
    deleted_ids,
    list_ids,
    new_id,
    now,
    pull,
)
from tests.support.people import Person

pytestmark = pytest.mark.postgres_only

# A bound on every wait, not an expectation: each step normally takes milliseconds.
BOUND = 30.0

T = TypeVar("T")


def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, timeout=BOUND)


async def waiting_on_locks(app: FastAPI, on: str) -> int:
    """How many statements on this test database that mention ``on`` wait for a lock now."""
    async with sessionmaker(app)() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE :pattern"
            ),
            {"pattern": f"%{on}%"},
        )
    return int(count or 0)


async def until_waiting(app: FastAPI, count: int, on: str = "") -> None:
    """Return once ``count`` statements mentioning ``on`` wait for a lock; fail if never."""

    async def poll() -> None:
        while True:
            if await waiting_on_locks(app, on) >= count:
                return
            await asyncio.sleep(0.01)  # PostgreSQL offers nothing to await here; poll it

    await bounded(poll())


@asynccontextmanager
async def counter_held(app: FastAPI, owner_id: str) -> AsyncIterator[AsyncSession]:
    """Hold the patient's change counter row; rolled back (the number returned) on leaving."""
    async with sessionmaker(app)() as held:
        await next_seq(held, uuid.UUID(owner_id))
        try:
            yield held
        finally:
            await held.rollback()


async def race_while_held(
    app: FastAPI, owner_id: str, requests: list[Awaitable[httpx.Response]], waiters: int
) -> list[httpx.Response]:
    """Start ``requests`` together while the owner's counter is held; let go once ``waiters``
    statements wait for a lock, so that all of them are in flight at the same moment."""
    responses: list[httpx.Response] = []
    racing: asyncio.Future[list[httpx.Response]] | None = None
    try:
        async with counter_held(app, owner_id):
            racing = asyncio.gather(*requests)
            await until_waiting(app, waiters)
    finally:
        # Also when the wait failed: the lock is gone, so the requests end; none is left behind.
        if racing is not None:
            responses = await bounded(racing)
    return responses


def all_ids(page: Json) -> set[str]:
    changed, deleted = changed_ids(page), deleted_ids(page)
    return {i for name in RESOURCE_NAMES for i in changed[name] | deleted[name]}


async def test_a_write_that_commits_late_is_not_skipped_by_a_sync_in_between(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    first = await create(client, patient, "checkins", mood=1)
    start = await pull(client, patient, "0")
    seen = all_ids(start)
    held_id = uuid.uuid4()

    async with sessionmaker(app)() as held:
        # A write that has taken the patient's next change number and not yet committed.
        entry = await EntryRepository(held, Checkin, Scope.own(uuid.UUID(patient.id))).add(
            held_id, {"recorded_at": now(), "mood": 2, "backfilled": False}, now()
        )
        assert entry is not None
        assert entry.seq == int(start["next_cursor"]) + 1
        api_create = asyncio.create_task(
            client.post("/v1/checkins", json={"mood": 3}, headers=patient.headers)
        )
        try:
            # The API write must queue behind it for a change number...
            await until_waiting(app, 1, on="change_counters")
            assert not api_create.done()
            # ...while a client syncs: it sees nothing yet and keeps its cursor.
            during = await bounded(pull(client, patient, start["next_cursor"]))
            assert all_ids(during) == set()
            assert during["next_cursor"] == start["next_cursor"]
            seen |= all_ids(during)
            await held.commit()
        finally:
            # Nothing left to undo after the commit; frees the lock if something failed.
            await held.rollback()
            response = await bounded(api_create)

    assert response.status_code == 201, response.text
    later = await pull(client, patient, during["next_cursor"])
    seen |= all_ids(later)
    assert seen == {first["id"], str(held_id), response.json()["id"]}
    # In commit order, numbered without gaps.
    assert [c["id"] for c in later["changes"]["checkins"]] == [str(held_id), response.json()["id"]]
    assert later["next_cursor"] == str(int(start["next_cursor"]) + 2)


async def test_a_sync_is_not_misled_by_writes_that_commit_while_it_reads(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    # A pull reads each resource in turn. Here two writes commit between its read of sessions
    # and its read of check-ins: a session (the lower change number) and then a check-in. The
    # pull must not answer with the check-in's number as its cursor without the session, or the
    # session is never delivered.
    order = [resource.name for resource in RESOURCES]
    assert order.index("sessions") < order.index("checkins"), "the pull reads sessions first"
    await create(client, patient, "checkins", mood=1)
    start = await pull(client, patient, "0")
    owner = Scope.own(uuid.UUID(patient.id))
    session_id, checkin_id = uuid.uuid4(), uuid.uuid4()

    async with sessionmaker(app)() as writer:
        # Holding this makes the pull wait at its check-ins query, after it has read sessions.
        await writer.execute(text("LOCK TABLE checkins IN ACCESS EXCLUSIVE MODE"))
        puller = asyncio.create_task(pull(client, patient, start["next_cursor"]))
        try:
            await until_waiting(app, 1, on="FROM checkins")
            await EntryRepository(writer, DosingSession, owner).add(
                session_id, {"started_at": now(), "route": "im", "setting": "clinic"}, now()
            )
            await EntryRepository(writer, Checkin, owner).add(
                checkin_id, {"recorded_at": now(), "mood": 2, "backfilled": False}, now()
            )
            await writer.commit()
        finally:
            # Nothing left to undo after the commit; frees the lock if something failed.
            await writer.rollback()
            during = await bounded(puller)

    seen = all_ids(during)
    later = await pull(client, patient, during["next_cursor"])
    seen |= all_ids(later)
    assert seen == {str(session_id), str(checkin_id)}


async def test_a_syncer_looping_through_concurrent_creates_sees_every_one(
    client: httpx.AsyncClient, patient: Person
) -> None:
    # 8 of each resource, with client ids; a third without an Idempotency-Key, so that requests
    # differ in the work they do between taking a change number and committing.
    writes = [(RESOURCE_NAMES[n % len(RESOURCE_NAMES)], new_id()) for n in range(40)]
    # All 40 start at once, but at most 4 are in flight (one caller's share of a node is half
    # its 10 slots): the syncer, the same caller, gets its turns while the creates race each
    # other, instead of queueing behind all of them.
    in_flight = asyncio.Semaphore(4)
    finished = asyncio.Event()
    seen: list[str] = []

    async def post(n: int, name: str, entry_id: str) -> httpx.Response:
        headers = {**patient.headers, "Idempotency-Key": entry_id} if n % 3 else patient.headers
        async with in_flight:
            return await client.post(
                f"/v1/{name}", json={**body_for(name), "id": entry_id}, headers=headers
            )

    async def create_all() -> list[httpx.Response]:
        try:
            return await asyncio.gather(
                *(post(n, name, entry_id) for n, (name, entry_id) in enumerate(writes))
            )
        finally:
            finished.set()

    async def sync_until_done() -> str:
        cursor = "0"
        while True:
            # Read before pulling: a pull that starts after every create answered sees them all.
            last_round = finished.is_set()
            page = await pull(client, patient, cursor, limit=7)
            assert int(page["next_cursor"]) >= int(cursor)
            seen.extend(entry["id"] for name in RESOURCE_NAMES for entry in page["changes"][name])
            cursor = str(page["next_cursor"])
            if last_round and not page["has_more"]:
                return cursor
            await asyncio.sleep(0)

    responses, cursor = await bounded(asyncio.gather(create_all(), sync_until_done()))

    assert [r.status_code for r in responses] == [201] * 40
    assert len(seen) == len(set(seen)), "an entry was delivered twice"
    assert set(seen) == {entry_id for _, entry_id in writes}, "an entry was skipped"
    assert cursor == "40"


async def test_the_same_idempotency_key_sent_twice_at_once_makes_one_row(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    headers = {**patient.headers, "Idempotency-Key": new_id()}

    async def send() -> httpx.Response:
        return await client.post("/v1/checkins", json={"mood": 6}, headers=headers)

    # Both wait for a change number; the second then finds the key taken by the first, undoes
    # its own write and replays the first answer.
    first, second = await race_while_held(app, patient.id, [send(), send()], waiters=2)

    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["location"] == second.headers["location"]
    replayed = sorted(r.headers.get("idempotent-replayed", "-") for r in (first, second))
    assert replayed == ["-", "true"]
    assert await list_ids(client, patient, "checkins") == {first.json()["id"]}
    assert (await pull(client, patient, "0"))["next_cursor"] == "1"


async def test_two_concurrent_edits_from_the_same_version_cannot_both_win(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    checkin = await create(client, patient, "checkins", mood=5)
    headers = {**patient.headers, "If-Match": '"1"'}

    async def patch(mood: int) -> httpx.Response:
        return await client.patch(
            f"/v1/checkins/{checkin['id']}", json={"mood": mood}, headers=headers
        )

    # Both have read version 1 and matched If-Match; both wait for a change number.
    responses = await race_while_held(app, patient.id, [patch(2), patch(9)], waiters=2)

    assert sorted(r.status_code for r in responses) == [200, 412]
    (winner,) = [r for r in responses if r.status_code == 200]
    (loser,) = [r for r in responses if r.status_code == 412]
    assert loser.headers["content-type"] == "application/problem+json"
    stored = await client.get(f"/v1/checkins/{checkin['id']}", headers=patient.headers)
    assert stored.json()["mood"] == winner.json()["mood"]
    assert stored.json()["version"] == 2
    assert stored.headers["etag"] == '"2"'
    # The loser's change number was returned: the feed has no gap.
    page = await pull(client, patient, "0")
    assert page["changes"]["checkins"] == [stored.json()]
    assert page["next_cursor"] == "2"


async def test_one_refresh_token_sent_twice_at_once_is_exchanged_once(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    sent = {"grant_type": "refresh_token", "refresh_token": patient.refresh_token}

    async def exchange() -> httpx.Response:
        return await client.post("/v1/auth/token", data=sent)

    racing: asyncio.Future[tuple[httpx.Response, httpx.Response]] | None = None
    async with sessionmaker(app)() as held:
        # Hold the token's row: both requests find it unused, then wait to claim it.
        await held.execute(
            select(RefreshToken.id)
            .where(RefreshToken.token_hash == hash_refresh_token(patient.refresh_token))
            .with_for_update()
        )
        try:
            racing = asyncio.gather(exchange(), exchange())
            await until_waiting(app, 2, on="refresh_tokens")
        finally:
            await held.rollback()
            responses = list(await bounded(racing)) if racing is not None else []

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400], statuses
    (refused,) = [r for r in responses if r.status_code == 400]
    assert refused.json()["error"] == "invalid_grant"
    async with sessionmaker(app)() as session:
        issued = await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .join(Login, Login.id == RefreshToken.login_id)
            .where(Login.account_id == uuid.UUID(patient.id))
        )
    assert issued == 2, "the first refresh token and exactly one successor"
