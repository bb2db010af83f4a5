"""Faults that only real processes and a real database show: a server killed mid-load, a database
that goes away (stopped, or silent) and comes back, a pool with no connection left, a graceful
shutdown, and two processes on one database.

Everything runs out of process: ``uvicorn api.main:app`` started as an operator starts it, spoken
to over loopback. A database that a test stops is a throwaway cluster of the test's own (see
``tests.support.cluster``); the shared server is never stopped. Every wait is bounded; the only
timed assertions are the bounds the service promises (the pool timeout, the shutdown grace
period, an answer instead of a hang), each with a generous margin.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from api.auth.keys import load_key_ring
from api.crypto import load_cipher
from api.settings import Settings
from tests.support.cluster import (
    Cluster,
    create_database,
    migrate_with_alembic,
    migrated_database,
    throwaway_cluster,
)
from tests.support.conformance import conforming_client
from tests.support.people import PASSWORD, Person, register
from tests.support.server import ServerProcess, running_server, service_environment
from tests.support.sharing import bearer, give_grant, mint

T = TypeVar("T")
Json = dict[str, Any]

# A bound on every wait, not an expectation: each step normally takes milliseconds.
BOUND = 30.0
# Margin on the bounds the service promises: machines running this are noisy.
MARGIN = 3
# Every request a test sends has this time limit: a hang fails the test instead of stalling it.
REQUEST_TIMEOUT = httpx.Timeout(BOUND)
PROBLEM = "application/problem+json"


async def bounded(awaitable: Awaitable[T], seconds: float = BOUND) -> T:
    return await asyncio.wait_for(awaitable, timeout=seconds)


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster for the tests of this module that stop nothing but servers."""
    with throwaway_cluster() as started:
        yield started


@pytest.fixture(scope="module")
async def migrated_template(cluster: Cluster) -> str:
    """A database on ``cluster`` migrated once with ``alembic upgrade head``, copied per test."""
    name = "faults_template"
    await migrated_database(cluster, name)
    return name


@pytest.fixture
async def database(cluster: Cluster, migrated_template: str) -> str:
    """A fresh migrated database of the test's own on the module's cluster."""
    return await create_database(cluster, unique_name(), template=migrated_template)


def unique_name() -> str:
    return f"faults_{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def pg(database_url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection of the test's own to the database the servers use."""
    url = make_url(database_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        yield connection
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def counter_held(database_url: str, owner_id: str) -> AsyncIterator[None]:
    """Hold the patient's row in ``change_counters`` (``SELECT ... FOR UPDATE`` in an open
    transaction): every write for the patient waits inside the database until we leave."""
    async with pg(database_url) as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            held = await connection.fetchval(
                "SELECT last_seq FROM change_counters WHERE owner_id = $1 FOR UPDATE",
                uuid.UUID(owner_id),
            )
            assert held is not None, "the patient has no change counter yet: write once first"
            yield
        finally:
            await transaction.rollback()


async def until_lock_waiters(monitor: Any, count: int, on: str = "") -> None:
    """Return once ``count`` statements (mentioning ``on``) on this database wait for a lock."""

    async def poll() -> None:
        while True:
            waiting = await monitor.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE $1",
                f"%{on}%",
            )
            if waiting >= count:
                return
            await asyncio.sleep(0.02)  # PostgreSQL offers nothing to await here: poll it

    await bounded(poll())


# --- servers and clients -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def client_for(server: ServerProcess, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with conforming_client(
        base_url=server.base_url, **{"timeout": REQUEST_TIMEOUT, **options}
    ) as client:
        yield client


def checkin(entry_id: str, mood: int, note: str) -> Json:
    return {"id": entry_id, "mood": mood, "note": note}


def keyed(person: Person, key: str) -> dict[str, str]:
    return {**person.headers, "Idempotency-Key": key}


async def write_checkin(
    client: httpx.AsyncClient, person: Person, body: Json, key: str
) -> httpx.Response:
    return await client.post("/v1/checkins", json=body, headers=keyed(person, key))


async def all_checkin_ids(client: httpx.AsyncClient, person: Person) -> list[str]:
    """Every check-in id the patient has, page after page (bounded)."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/v1/checkins", params=params, headers=person.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("more than 100 pages of check-ins")


def assert_unavailable(response: httpx.Response, what: str) -> None:
    """503 problem+json with a Retry-After of whole seconds: the answer to "no database"."""
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM, what
    assert response.headers.get("retry-after", "").isdigit(), f"{what}: {response.headers}"
    assert int(response.headers["retry-after"]) > 0, what
    body = response.json()
    assert body["status"] == 503, what
    assert {"type", "title", "detail"} <= set(body), what


def assert_no_unhandled(server: ServerProcess) -> None:
    """The service logs every 500 as "unhandled exception"; there must be none."""
    log = server.log_text()
    assert "unhandled exception" not in log, server.log_tail()
    assert "Traceback" not in log, server.log_tail()


# --- 1. a server killed mid-load ---------------------------------------------------------------

WRITES = 320
WRITERS = 8
PATIENTS = 4
KILL_AFTER_ACKS = 140


@dataclass
class PlannedWrite:
    patient: Person
    id: str
    key: str
    body: Json
    outcome: str = "not sent"  # "acknowledged", "unknown", or "status <code>: <body>"
    answer: Json | None = None


@dataclass
class Load:
    queue: collections.deque[PlannedWrite]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once KILL_AFTER_ACKS writes are acknowledged (or a writer has nothing left to send).
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: int = 0


async def writer(client: httpx.AsyncClient, load: Load) -> None:
    while load.queue and not load.stop.is_set():
        write = load.queue.popleft()
        try:
            response = await write_checkin(client, write.patient, write.body, write.key)
        except httpx.TransportError:
            write.outcome = "unknown"  # no answer: written or not, the client cannot tell
            continue
        if response.status_code == 201:
            write.outcome, write.answer = "acknowledged", response.json()
            load.acknowledged += 1
            if load.acknowledged >= KILL_AFTER_ACKS:
                load.enough.set()
        else:
            write.outcome = f"status {response.status_code}: {response.text}"
    load.enough.set()


@pytest.mark.postgres_only
async def test_a_server_killed_mid_load_loses_no_acknowledged_write_and_resends_do_not_duplicate(
    database: str, tmp_path: Path
) -> None:
    database_url = database
    env = service_environment(database_url, tmp_path / "data")
    async with running_server(env, tmp_path / "server.log") as server:
        async with client_for(server, limits=httpx.Limits(max_connections=WRITERS)) as client:
            patients = [await register(client, "patient") for _ in range(PATIENTS)]
            plan = [
                PlannedWrite(
                    patient=patients[i % PATIENTS],
                    id=entry_id,
                    key=f"crash-{uuid.uuid4()}",
                    body=checkin(entry_id, i % 11, f"crash test write {i}"),
                )
                for i, entry_id in enumerate(str(uuid.uuid4()) for _ in range(WRITES))
            ]
            load = Load(queue=collections.deque(plan))
            writers = [asyncio.create_task(writer(client, load)) for _ in range(WRITERS)]
            try:
                await bounded(load.enough.wait(), seconds=120)
                # Mid-load: every writer has a request in flight. No new ones after this.
                load.stop.set()
                server.kill()
            finally:
                load.stop.set()
                results = await bounded(asyncio.gather(*writers, return_exceptions=True))
            assert not [r for r in results if isinstance(r, BaseException)], results

            refused = [w.outcome for w in plan if w.outcome.startswith("status")]
            assert not refused, f"answers other than 201 before the kill: {refused[:5]}"
            acknowledged = [w for w in plan if w.outcome == "acknowledged"]
            unknown = [w for w in plan if w.outcome == "unknown"]
            never_sent = [w for w in plan if w.outcome == "not sent"]
            assert unknown, "the kill caught no request in flight: nothing was tested"

            server.start()
            await server.wait_ready()

            # Resend every write whose outcome is unknown: same id, same body, same key.
            recovered = replayed = 0
            for write in unknown:
                response = await write_checkin(client, write.patient, write.body, write.key)
                assert response.status_code == 201, response.text
                assert response.json()["id"] == write.id
                recovered += 1
                replayed += response.headers.get("idempotent-replayed") == "true"
            # A sample of acknowledged writes resent: answered as the first time, nothing new.
            for write in acknowledged[:: max(1, len(acknowledged) // 20)]:
                response = await write_checkin(client, write.patient, write.body, write.key)
                assert response.status_code == 201, response.text
                assert response.headers.get("idempotent-replayed") == "true"
                assert response.json() == write.answer

            found = lost = 0
            for write in acknowledged:
                response = await client.get(
                    f"/v1/checkins/{write.id}", headers=write.patient.headers
                )
                if response.status_code == 200 and response.json() == write.answer:
                    found += 1
                else:
                    lost += 1
            listed: collections.Counter[str] = collections.Counter()
            for patient in patients:
                listed.update(await all_checkin_ids(client, patient))
            expected = {w.id for w in acknowledged} | {w.id for w in unknown}
            duplicates = sum(n - 1 for n in listed.values()) + len(set(listed) - expected)
            stray = {w.id for w in never_sent} & set(listed)

        print(
            f"\n[crash] writes planned {WRITES}, writers {WRITERS}: acknowledged "
            f"{len(acknowledged)}, unknown {len(unknown)} (of which already written "
            f"{replayed}), never sent {len(never_sent)}; after restart: found {found}, "
            f"lost {lost}, recovered {recovered}, duplicates {duplicates}, "
            f"listed {sum(listed.values())}"
        )
        assert lost == 0
        assert duplicates == 0
        assert not stray
        assert sum(listed.values()) == len(acknowledged) + recovered
        assert_no_unhandled(server)


# --- 2. the database goes away and comes back ------------------------------------------------

OUTAGE_POOL_TIMEOUT = 2.0
# readyz gives up after 2 s (api.health.endpoints), a data route after the pool timeout.
OUTAGE_ANSWER_BOUND = MARGIN * max(OUTAGE_POOL_TIMEOUT, 2.0)
RECOVERY_BOUND = 30.0


async def timed(
    request: Callable[[], Awaitable[httpx.Response]],
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await bounded(request())
    return response, time.monotonic() - started


async def outage_answers(client: httpx.AsyncClient, patient: Person, body: Json, key: str) -> None:
    """Every kind of route that needs the database: 503 problem with Retry-After, in bounded
    time; liveness untouched. Twice: first with pooled connections the database dropped, then
    with none left."""
    token_form = {"grant_type": "password", "username": patient.email, "password": PASSWORD}
    requests: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
        ("GET /readyz", lambda: client.get("/readyz")),
        ("GET /v1/me", lambda: client.get("/v1/me", headers=patient.headers)),
        ("POST /v1/checkins", lambda: write_checkin(client, patient, body, key)),
        ("GET /v1/checkins", lambda: client.get("/v1/checkins", headers=patient.headers)),
        ("POST /v1/auth/token", lambda: client.post("/v1/auth/token", data=token_form)),
    ]
    for attempt in (1, 2):
        for what, request in requests:
            response, elapsed = await timed(request)
            assert_unavailable(response, f"{what} (attempt {attempt})")
            assert elapsed < OUTAGE_ANSWER_BOUND, f"{what} took {elapsed:.1f}s"
        assert (await client.get("/healthz")).status_code == 200


async def until_recovered(client: httpx.AsyncClient, patient: Person) -> float:
    """Seconds until a data route answers 200 again; only 503 is acceptable meanwhile."""
    started = time.monotonic()
    while True:
        me = await client.get("/v1/me", headers=patient.headers)
        if me.status_code == 200:
            return time.monotonic() - started
        assert_unavailable(me, "GET /v1/me while the database comes back")
        assert time.monotonic() - started < RECOVERY_BOUND, "no recovery within the bound"
        await asyncio.sleep(0.05)  # the process reconnects on its own: poll it


@pytest.mark.postgres_only
async def test_a_database_outage_is_503_with_retry_after_and_the_same_process_recovers(
    tmp_path: Path,
) -> None:
    with throwaway_cluster() as own:
        database_url = await create_database(own, unique_name())
        env = service_environment(
            database_url, tmp_path / "data", db_pool_timeout_seconds=OUTAGE_POOL_TIMEOUT
        )
        async with contextlib.AsyncExitStack() as stack:
            # The process touches the database only when asked: it starts while alembic runs.
            server, _ = await asyncio.gather(
                stack.enter_async_context(running_server(env, tmp_path / "server.log")),
                asyncio.to_thread(migrate_with_alembic, database_url),
            )
            client = await stack.enter_async_context(client_for(server))
            patient = await register(client, "patient")
            written: list[str] = []
            pid = server.pid
            # An orderly stop (clients told), then a crash-like one (connections just vanish).
            for mode in ("fast", "immediate"):
                before = await write_checkin(
                    client, patient, checkin(str(uuid.uuid4()), 5, f"before {mode}"), mode
                )
                assert before.status_code == 201, before.text
                written.append(before.json()["id"])

                await asyncio.to_thread(own.stop, mode)
                body, key = checkin(str(uuid.uuid4()), 3, f"during {mode}"), f"during-{mode}"
                await outage_answers(client, patient, body, key)
                await asyncio.to_thread(own.start)

                # The same process, no restart: data routes answer again within a bound.
                recovered_after = await until_recovered(client, patient)
                assert (await client.get("/readyz")).status_code == 200
                # The write refused during the outage goes through now, once.
                again = await write_checkin(client, patient, body, key)
                assert again.status_code == 201, again.text
                assert again.headers.get("idempotent-replayed") is None
                written.append(body["id"])
                assert sorted(await all_checkin_ids(client, patient)) == sorted(written)
                print(
                    f"\n[outage: pg_ctl stop -m {mode}] 503 problem with Retry-After from every "
                    f"data route and /readyz; data routes 200 again {recovered_after:.2f}s "
                    "after the database was back"
                )
            assert server.pid == pid
            assert server.alive, "the server process did not survive"
            assert_no_unhandled(server)


@pytest.mark.postgres_only
async def test_a_database_that_stops_answering_is_503_in_bounded_time_not_a_hang(
    tmp_path: Path,
) -> None:
    """The database does not close anything: it just stops answering (a hung server, or a
    network partition that drops packets). Here the throwaway cluster is frozen with SIGSTOP:
    connections are accepted by the kernel and never served, pooled ones go silent."""
    with throwaway_cluster() as own:
        database_url = await create_database(own, unique_name())
        env = service_environment(
            database_url, tmp_path / "data", db_pool_timeout_seconds=OUTAGE_POOL_TIMEOUT
        )
        async with contextlib.AsyncExitStack() as stack:
            server, _ = await asyncio.gather(
                stack.enter_async_context(running_server(env, tmp_path / "server.log")),
                asyncio.to_thread(migrate_with_alembic, database_url),
            )
            # A client that gives up just after the bound: a hang fails here, it does not stall.
            client = await stack.enter_async_context(
                client_for(server, timeout=httpx.Timeout(OUTAGE_ANSWER_BOUND + 1))
            )
            patient = await register(client, "patient")
            # A busy process: several pooled connections, idle when the database goes silent.
            warm = await asyncio.gather(
                *(client.get("/v1/me", headers=patient.headers) for _ in range(4))
            )
            assert all(r.status_code == 200 for r in warm)

            body, key = checkin(str(uuid.uuid4()), 3, "while the database is silent"), "silent"
            token_form = {"grant_type": "password", "username": patient.email, "password": PASSWORD}
            requests: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
                ("GET /readyz", lambda: client.get("/readyz")),
                ("GET /v1/me", lambda: client.get("/v1/me", headers=patient.headers)),
                ("POST /v1/checkins", lambda: write_checkin(client, patient, body, key)),
                ("POST /v1/auth/token", lambda: client.post("/v1/auth/token", data=token_form)),
            ]
            outcomes: list[str] = []
            own.freeze()
            try:
                for what, request in requests:
                    started = time.monotonic()
                    try:
                        response = await request()
                    except httpx.TimeoutException:
                        # Each further request would wait as long: one hang is the finding.
                        outcomes.append(f"{what}: no answer in {OUTAGE_ANSWER_BOUND + 1:.0f}s")
                        break
                    elapsed = time.monotonic() - started
                    outcomes.append(f"{what}: {response.status_code} in {elapsed:.1f}s")
                    assert_unavailable(response, what)
                    assert elapsed < OUTAGE_ANSWER_BOUND, f"{what} took {elapsed:.1f}s"
                live, live_elapsed = await timed(lambda: client.get("/healthz"))
                assert live.status_code == 200
                assert live_elapsed < OUTAGE_POOL_TIMEOUT, f"/healthz took {live_elapsed:.2f}s"
            finally:
                own.thaw()
                print(f"\n[silent database] {'; '.join(outcomes)}")
            assert all(" 503 in " in outcome for outcome in outcomes), (
                f"a silent database must give 503 in bounded time, not a hang: {outcomes}"
            )

            recovered_after = await until_recovered(client, patient)
            again = await write_checkin(client, patient, body, key)
            assert again.status_code == 201, again.text
            assert await all_checkin_ids(client, patient) == [body["id"]]
            print(f"[silent database] data routes 200 again {recovered_after:.2f}s after thaw")
            assert_no_unhandled(server)


# --- 3. no pooled connection left ------------------------------------------------------------

POOL_SIZE = 2
POOL_TIMEOUT = 1.0


@pytest.mark.postgres_only
async def test_an_exhausted_pool_answers_503_within_the_pool_timeout_and_liveness_at_once(
    database: str, tmp_path: Path
) -> None:
    database_url = database
    env = service_environment(
        database_url,
        tmp_path / "data",
        db_pool_size=POOL_SIZE,
        db_pool_timeout_seconds=POOL_TIMEOUT,
        # The pool is what this test exhausts: one caller may fill it here, and its writes wait
        # for the held row as long as the test needs (the per-caller share and the lock timeout
        # have tests of their own in test_several_nodes.py).
        max_requests_per_caller=POOL_SIZE,
        db_lock_timeout_seconds=BOUND,
    )
    async with running_server(env, tmp_path / "server.log") as server, client_for(server) as client:
        patient = await register(client, "patient")
        other = await register(client, "patient")
        first = await write_checkin(client, patient, checkin(str(uuid.uuid4()), 5, "x"), "k0")
        assert first.status_code == 201, first.text

        blocked_bodies = [checkin(str(uuid.uuid4()), 4, f"blocked {i}") for i in range(POOL_SIZE)]
        blocked: list[asyncio.Task[httpx.Response]] = []
        async with pg(database_url) as monitor:
            try:
                async with counter_held(database_url, patient.id):
                    # One write per pooled connection, each waiting inside the database.
                    blocked = [
                        asyncio.create_task(write_checkin(client, patient, body, f"blocked-{i}"))
                        for i, body in enumerate(blocked_bodies)
                    ]
                    # The first waits for the counter, the others behind it for the patient's
                    # account row, which every write holds from its authentication.
                    await until_lock_waiters(monitor, POOL_SIZE)

                    refused_body = checkin(str(uuid.uuid4()), 7, "refused for want of a connection")
                    for what, request in (
                        ("GET /v1/me", lambda: client.get("/v1/me", headers=other.headers)),
                        (
                            "POST /v1/checkins",
                            lambda: write_checkin(client, other, refused_body, "refused"),
                        ),
                    ):
                        response, elapsed = await timed(request)
                        assert_unavailable(response, what)
                        assert elapsed < MARGIN * POOL_TIMEOUT, f"{what} took {elapsed:.2f}s"
                    # Busy is not down: readiness has a connection of its own.
                    ready = await bounded(client.get("/readyz"))
                    assert ready.status_code == 200, ready.text
                    live, live_elapsed = await timed(lambda: client.get("/healthz"))
                    assert live.status_code == 200
                    # "At once": the pool timeout is the wait it must not share.
                    assert live_elapsed < POOL_TIMEOUT, f"/healthz took {live_elapsed:.2f}s"
                    assert not any(task.done() for task in blocked)
            finally:
                answers = await bounded(asyncio.gather(*blocked, return_exceptions=True))

        for answer, body in zip(answers, blocked_bodies, strict=True):
            assert isinstance(answer, httpx.Response), answer
            assert answer.status_code == 201, answer.text
            assert answer.json()["id"] == body["id"]
        # Everything completes again, and the refused write can simply be resent.
        assert (await client.get("/v1/me", headers=other.headers)).status_code == 200
        resent = await write_checkin(client, other, refused_body, "refused")
        assert resent.status_code == 201, resent.text
        assert sorted(await all_checkin_ids(client, patient)) == sorted(
            [first.json()["id"], *(b["id"] for b in blocked_bodies)]
        )
        assert await all_checkin_ids(client, other) == [refused_body["id"]]
        assert_no_unhandled(server)


# --- 4. graceful shutdown --------------------------------------------------------------------

GRACE_SECONDS = 10
IN_FLIGHT = 4


async def until_refused(server: ServerProcess) -> None:
    """Return once a new connection is refused; fail on any answer but a healthy 200 before."""

    async def poll() -> None:
        while True:
            async with client_for(server) as fresh:
                try:
                    response = await fresh.get("/healthz")
                except (httpx.ConnectError, httpx.RemoteProtocolError):
                    # Refused, or accepted in the instant the server stopped listening and then
                    # closed unanswered: either way nothing was processed, and a client may retry.
                    return
            assert response.status_code == 200, f"during shutdown: {response.status_code}"
            await asyncio.sleep(0.02)

    await bounded(poll())


@pytest.mark.postgres_only
async def test_sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_in_grace(
    database: str, tmp_path: Path
) -> None:
    database_url = database
    env = service_environment(database_url, tmp_path / "data")
    log = tmp_path / "server.log"
    grace = ("--timeout-graceful-shutdown", str(GRACE_SECONDS))
    async with running_server(env, log, *grace) as server, client_for(server) as client:
        patient = await register(client, "patient")
        first = await write_checkin(client, patient, checkin(str(uuid.uuid4()), 5, "x"), "k0")
        assert first.status_code == 201, first.text

        bodies = [checkin(str(uuid.uuid4()), 6, f"in flight {i}") for i in range(IN_FLIGHT)]
        in_flight: list[asyncio.Task[httpx.Response]] = []
        async with pg(database_url) as monitor:
            try:
                async with counter_held(database_url, patient.id):
                    in_flight = [
                        asyncio.create_task(write_checkin(client, patient, body, f"flight-{i}"))
                        for i, body in enumerate(bodies)
                    ]
                    # One waits for the counter, the others for the patient's account row.
                    await until_lock_waiters(monitor, IN_FLIGHT)
                    server.signal(signal.SIGTERM)
                    signalled = time.monotonic()
                    await until_refused(server)
                    assert not any(task.done() for task in in_flight)
                    assert server.alive
            finally:
                answers = await bounded(asyncio.gather(*in_flight, return_exceptions=True))
            code = await server.wait_exit(MARGIN * GRACE_SECONDS)
            exited_after = time.monotonic() - signalled

            for answer, body in zip(answers, bodies, strict=True):
                assert isinstance(answer, httpx.Response), f"{answer!r}\n{server.log_tail()}"
                assert answer.status_code == 201, answer.text
                assert answer.json()["id"] == body["id"]
            # uvicorn ends a clean shutdown by re-raising the signal it caught: -SIGTERM.
            assert code in {0, -signal.SIGTERM}, f"exit code {code}:\n{server.log_tail()}"
            assert exited_after < MARGIN * GRACE_SECONDS
            # What was acknowledged during the shutdown is in the database.
            stored = await monitor.fetchval(
                "SELECT count(*) FROM checkins WHERE id = ANY($1::uuid[])",
                [uuid.UUID(b["id"]) for b in bodies],
            )
            assert stored == IN_FLIGHT
        print(f"\n[sigterm] {IN_FLIGHT} in flight answered 201; exited {exited_after:.2f}s after")
        assert_no_unhandled(server)


@pytest.mark.postgres_only
async def test_sigterm_with_a_request_that_outlives_the_grace_period_still_exits_in_time(
    database: str, tmp_path: Path
) -> None:
    grace_seconds = 2
    database_url = database
    env = service_environment(database_url, tmp_path / "data")
    grace = ("--timeout-graceful-shutdown", str(grace_seconds))
    async with (
        running_server(env, tmp_path / "server.log", *grace) as server,
        client_for(server) as client,
    ):
        patient = await register(client, "patient")
        first = await write_checkin(client, patient, checkin(str(uuid.uuid4()), 5, "x"), "k0")
        assert first.status_code == 201, first.text
        body, key = checkin(str(uuid.uuid4()), 6, "cut off"), "cut-off"
        stuck: asyncio.Task[httpx.Response] | None = None
        async with pg(database_url) as monitor:
            try:
                async with counter_held(database_url, patient.id):
                    stuck = asyncio.create_task(write_checkin(client, patient, body, key))
                    await until_lock_waiters(monitor, 1, on="change_counters")
                    server.signal(signal.SIGTERM)
                    signalled = time.monotonic()
                    # The lock is held past the grace period: the process must not wait for it.
                    code = await server.wait_exit(MARGIN * grace_seconds)
                    exited_after = time.monotonic() - signalled
            finally:
                outcome = (
                    await bounded(asyncio.gather(stuck, return_exceptions=True))
                    if stuck
                    else [None]
                )
            assert code is not None, f"still running {exited_after:.1f}s after SIGTERM"
            assert exited_after < MARGIN * grace_seconds
            # Never a 500: the cut-off request gets no answer (or a 503), and as the lock was
            # held until the process was gone, nothing of it was committed.
            (answer,) = outcome
            if isinstance(answer, httpx.Response):
                assert answer.status_code == 503, answer.text
            else:
                assert isinstance(answer, httpx.TransportError), repr(answer)
            written = await monitor.fetchval(
                "SELECT count(*) FROM checkins WHERE id = $1", uuid.UUID(body["id"])
            )
            assert written == 0
        print(
            f"\n[sigterm, stuck request] exited {exited_after:.2f}s after (grace {grace_seconds}s), "
            f"code {code}; client saw {type(answer).__name__}; written {written}"
        )
        # After a restart, the client's resend lands exactly once.
        server.start()
        await server.wait_ready()
        resent = await write_checkin(client, patient, body, key)
        assert resent.status_code == 201, resent.text
        assert sorted(await all_checkin_ids(client, patient)) == sorted(
            [first.json()["id"], body["id"]]
        )


# --- 5. several processes, one database -------------------------------------------------------


@pytest.mark.postgres_only
async def test_two_processes_on_one_database_write_once_and_revoke_at_once(
    database_url: str, tmp_path: Path
) -> None:
    env = service_environment(database_url, tmp_path / "data")
    # The development keys both processes share, made before either starts (two processes
    # starting on an empty data folder would each make their own).
    shared = Settings.model_validate({"data_dir": tmp_path / "data", "database_url": database_url})
    load_key_ring(shared)
    load_cipher(shared)
    async with contextlib.AsyncExitStack() as stack:
        a, b = await asyncio.gather(
            stack.enter_async_context(running_server(env, tmp_path / "a.log")),
            stack.enter_async_context(running_server(env, tmp_path / "b.log")),
        )
        on_a = await stack.enter_async_context(client_for(a))
        on_b = await stack.enter_async_context(client_for(b))
        patient = await register(on_a, "patient")
        therapist = await register(on_b, "therapist")
        first = await write_checkin(on_b, patient, checkin(str(uuid.uuid4()), 5, "x"), "k0")
        assert first.status_code == 201, first.text
        written = [first.json()["id"]]

        async def race(body: Json, key: str) -> tuple[httpx.Response, httpx.Response]:
            return await bounded(
                asyncio.gather(
                    write_checkin(on_a, patient, body, key),
                    write_checkin(on_b, patient, body, key),
                )
            )

        rounds: list[tuple[httpx.Response, httpx.Response]] = []
        # Held: both requests are certainly inside the database at the same moment.
        body = checkin(str(uuid.uuid4()), 4, "sent to both at once")
        async with pg(database_url) as monitor:
            racing: asyncio.Task[tuple[httpx.Response, httpx.Response]] | None = None
            try:
                async with counter_held(database_url, patient.id):
                    racing = asyncio.create_task(race(body, "both-at-once"))
                    await until_lock_waiters(monitor, 2)
            finally:
                if racing is not None:
                    rounds.append(await bounded(racing))
        written.append(body["id"])
        # And free-running, a few more times.
        for i in range(5):
            body = checkin(str(uuid.uuid4()), i, f"free race {i}")
            rounds.append(await race(body, f"free-{i}"))
            written.append(body["id"])

        for from_a, from_b in rounds:
            assert from_a.status_code == 201, from_a.text
            assert from_b.status_code == 201, from_b.text
            assert from_a.json() == from_b.json()
            for header in ("location", "etag"):
                assert from_a.headers[header] == from_b.headers[header]
            replays = [r.headers.get("idempotent-replayed") for r in (from_a, from_b)]
            assert sorted(replays, key=str) == sorted(["true", None], key=str), replays
        listed = await all_checkin_ids(on_a, patient)
        assert sorted(listed) == sorted(written)

        # A grant revoked through A is refused by B on the very next request.
        grant = await give_grant(on_a, patient, therapist, ["checkins:read"])
        read = bearer(await mint(on_b, therapist, grant["id"]))
        path = f"/v1/patients/{patient.id}/checkins"
        assert (await on_b.get(path, headers=read)).status_code == 200
        assert (await on_a.get(path, headers=read)).status_code == 200
        revoked = await on_a.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
        assert revoked.status_code == 204, revoked.text
        after_b = await on_b.get(path, headers=read)
        assert after_b.status_code == 401, after_b.text
        assert after_b.headers["content-type"] == PROBLEM
        assert (await on_a.get(path, headers=read)).status_code == 401

        # A login ended through B is refused by A on the very next request.
        ended = await on_b.post("/v1/auth/revoke", data={"token": therapist.access_token})
        assert ended.status_code == 200, ended.text
        assert (await on_a.get("/v1/me", headers=therapist.headers)).status_code == 401
        for server in (a, b):
            assert_no_unhandled(server)
