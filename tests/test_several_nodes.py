"""What running several nodes behind a load balancer needs, each seen failing first (issue 16):
dropped database connections, a busy node that must not call itself dead, one caller filling a
node, a key rotation during a rolling restart, and the client address behind a proxy.

Real processes on loopback, on a throwaway PostgreSQL cluster of the module's own (see
``tests.support.cluster``); the shared server is never stopped. Every wait is bounded; nothing is
asserted about how long anything took.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import ROOT, Cluster, create_database, migrated_database
from tests.support.cluster import throwaway_cluster as _throwaway_cluster
from tests.support.conformance import conforming_client
from tests.support.people import PASSWORD, Person, register
from tests.support.server import (
    ServerProcess,
    running_server,
    server_processes,
    service_environment,
)
from tests.support.sharing import bearer
from tests.test_faults import (
    BOUND,
    assert_no_unhandled,
    assert_unavailable,
    bounded,
    checkin,
    client_for,
    counter_held,
    pg,
    until_lock_waiters,
    write_checkin,
)

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def nodes_cluster() -> Iterator[Cluster]:
    with _throwaway_cluster() as started:
        yield started


@pytest.fixture(scope="module")
async def nodes_template(nodes_cluster: Cluster) -> str:
    name = "nodes_template"
    await migrated_database(nodes_cluster, name)
    return name


@pytest.fixture
async def nodes_database(nodes_cluster: Cluster, nodes_template: str) -> str:
    return await create_database(
        nodes_cluster, f"nodes_{uuid.uuid4().hex[:12]}", template=nodes_template
    )


# --- 1. dropped database connections ------------------------------------------------------------


@dataclass
class Tally:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    bad: list[str] = field(default_factory=list)  # every answer that is neither success nor 503
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    successes: int = 0
    # (how many successes, resolved once there are that many)
    waiting: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def record(self, what: str, response: httpx.Response, ok: int) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == ok:
            self.successes += 1
            for target, reached in self.waiting:
                if self.successes >= target and not reached.done():
                    reached.set_result(None)
            return
        try:
            assert_unavailable(response, what)
        except AssertionError as failure:
            self.bad.append(str(failure)[:300])


async def steady_load(client: httpx.AsyncClient, patient: Person, tally: Tally) -> None:
    """Writes and reads for one patient until told to stop; every answer is tallied."""
    while not tally.stop.is_set():
        entry = str(uuid.uuid4())
        written = await write_checkin(client, patient, checkin(entry, 5, "steady"), entry)
        tally.record("POST /v1/checkins", written, 201)
        listed = await client.get("/v1/checkins", params={"limit": 5}, headers=patient.headers)
        tally.record("GET /v1/checkins", listed, 200)
        me = await client.get("/v1/me", headers=patient.headers)
        tally.record("GET /v1/me", me, 200)


async def terminate_backends(database_url: str) -> int:
    """What a failover does to the service: every backend on its database is cut off."""
    async with pg(database_url) as admin:
        killed: int = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS cut"
        )
    return killed


async def until_successes(tally: Tally, more: int) -> None:
    """Return once ``more`` further answers have succeeded (the load goes on meanwhile)."""
    reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tally.waiting.append((tally.successes + more, reached))
    await bounded(reached)


ROUNDS = 3


async def test_connections_cut_under_load_answer_503_with_retry_after_never_500(
    tmp_path: Path, nodes_cluster: Cluster, nodes_database: str
) -> None:
    """Failure 1: pg_terminate_backend of every backend under load, several rounds, then a
    restart of the whole (throwaway) cluster: 0 answers of 500, every failure a 503 problem
    with Retry-After, and the process writes again after each round."""
    env = service_environment(nodes_database, tmp_path / "data", db_pool_size=6)
    async with (
        running_server(env, tmp_path / "server.log") as server,
        client_for(server) as client,
    ):
        patients = [await register(client, "patient") for _ in range(4)]
        tally = Tally()
        load = [asyncio.create_task(steady_load(client, p, tally)) for p in patients]
        try:
            await until_successes(tally, 10)
            for _ in range(ROUNDS):
                assert await terminate_backends(nodes_database) > 0
                await until_successes(tally, 10)
            # A restart (a fast shutdown: every session ended, then the server back).
            await asyncio.to_thread(nodes_cluster.stop, "fast")
            await asyncio.to_thread(nodes_cluster.start)
            await until_successes(tally, 10)
        finally:
            tally.stop.set()
            await bounded(asyncio.gather(*load))
        unhandled = [line for line in server.log_text().splitlines() if "unhandled" in line]
        assert tally.bad == [], (tally.statuses, tally.bad[:5], unhandled[:3])
        assert tally.statuses[500] == 0
        assert_no_unhandled(server)


# --- 2. a busy node is not a dead one, and one caller cannot fill it -------------------------


async def test_one_patient_holding_a_row_cannot_fill_the_node_and_readiness_stays_up(
    tmp_path: Path, nodes_database: str
) -> None:
    """Failure 2: one patient's change counter held by another transaction while that patient
    sends 36 writes at once. The patient gets its share of the node (the rest 429 at once), its
    waits end at the lock timeout with a 503 that says so, someone else writes meanwhile, and
    /readyz answers 200 throughout."""
    env = service_environment(
        nodes_database,
        tmp_path / "data",
        db_pool_size=4,
        db_pool_timeout_seconds=10,
        db_lock_timeout_seconds=2,
    )
    async with (
        running_server(env, tmp_path / "server.log") as server,
        client_for(server) as client,
        pg(nodes_database) as monitor,
    ):
        greedy, other = await register(client, "patient"), await register(client, "patient")
        first = await write_checkin(client, greedy, checkin(str(uuid.uuid4()), 5, "x"), "first")
        assert first.status_code == 201, first.text
        async with counter_held(nodes_database, greedy.id):
            burst = [
                asyncio.create_task(
                    write_checkin(client, greedy, checkin(str(uuid.uuid4()), 4, "b"), f"b{i}")
                )
                for i in range(36)
            ]
            # Its share waits: one on the counter, the other on the account row that every write
            # locks first (issue 15's one lock order): count every lock waiter.
            await until_lock_waiters(monitor, 2)
            written = await bounded(
                write_checkin(client, other, checkin(str(uuid.uuid4()), 7, "o"), "other")
            )
            ready = await bounded(client.get("/readyz"))
            answers = await bounded(asyncio.gather(*burst))
        assert written.status_code == 201, written.text
        assert ready.status_code == 200, ready.text
        statuses = collections.Counter(answer.status_code for answer in answers)
        assert set(statuses) <= {429, 503}, statuses
        assert statuses[503] == 2, statuses  # its share: half of the node's 4
        for answer in answers:
            detail = answer.json()["detail"]
            assert "Retry-After".lower() in answer.headers
            if answer.status_code == 503:
                assert "lock timeout" in detail, detail
                assert "not reachable" not in detail, detail
        assert_no_unhandled(server)


async def test_sigterm_turns_the_node_unready_and_it_serves_through_the_drain(
    tmp_path: Path, nodes_database: str
) -> None:
    """On SIGTERM the node answers /readyz 503 at once, and keeps serving new connections
    for the drain time (the load balancer's health checks need it), then exits cleanly."""
    env = service_environment(nodes_database, tmp_path / "data", drain_seconds=8)
    async with (
        running_server(env, tmp_path / "server.log") as server,
        client_for(server) as client,
    ):
        patient = await register(client, "patient")
        assert (await client.get("/readyz")).status_code == 200
        server.signal(signal.SIGTERM)
        async with client_for(server) as fresh:
            # A new connection after the signal: the load balancer still sends some.
            ready = await bounded(fresh.get("/readyz"))
            written = await bounded(
                write_checkin(fresh, patient, checkin(str(uuid.uuid4()), 6, "d"), "drain")
            )
        assert_unavailable(ready, "GET /readyz while draining")
        assert "shutting down" in ready.json()["detail"]
        assert written.status_code == 201, written.text
        code = await server.wait_exit(BOUND)
        assert code in {0, -signal.SIGTERM}, f"exit code {code}:\n{server.log_tail()}"
        assert_no_unhandled(server)


# --- 5. the client's address behind a proxy on another host ----------------------------------


@contextlib.asynccontextmanager
async def from_address(server: ServerProcess, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from ``address`` (another loopback address: another
    host, as far as the server can tell)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with conforming_client(
        base_url=server.base_url, transport=transport, timeout=httpx.Timeout(BOUND)
    ) as client:
        yield client


async def failed_sign_in(client: httpx.AsyncClient, forwarded_for: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "nobody@example.org", "password": "wrong"},
        headers={"X-Forwarded-For": forwarded_for},
    )


async def test_per_address_limits_key_on_the_client_behind_a_trusted_proxy(
    tmp_path: Path, nodes_database: str
) -> None:
    """Failure 5: a load balancer on 127.0.0.2 (JOURNAL_TRUSTED_PROXIES) forwards for two
    clients; one exhausts the token endpoint's per-address budget, the other still signs in.
    A caller on 127.0.0.3, not trusted, cannot choose its address by sending the header."""
    env = service_environment(
        nodes_database,
        tmp_path / "data",
        trusted_proxies="127.0.0.2",
        rate_limit_token_per_address="3/minute",
    )
    async with (
        running_server(env, tmp_path / "server.log") as server,
        from_address(server, "127.0.0.2") as proxy,
        from_address(server, "127.0.0.3") as stranger,
    ):
        attacker, victim = "203.0.113.7", "198.51.100.9"
        answers = [await failed_sign_in(proxy, attacker) for _ in range(4)]
        assert [a.status_code for a in answers] == [400, 400, 400, 429]
        # The next client behind the same proxy has a budget of its own.
        assert (await failed_sign_in(proxy, victim)).status_code == 400
        # Not a trusted proxy: its header is ignored, it is counted as itself.
        spoofed = [await failed_sign_in(stranger, victim) for _ in range(4)]
        assert [a.status_code for a in spoofed] == [400, 400, 400, 429]
        assert (await failed_sign_in(proxy, victim)).status_code == 400


# --- 4. a key rotation during a rolling restart ------------------------------------------------


def journal_cli(env: dict[str, str], *args: str) -> str:
    """``journal ...`` as an operator runs it, with the nodes' settings."""
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "journal"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 0, f"journal {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def restart(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    assert await server.wait_exit(BOUND) is not None, server.log_tail()
    server.start()
    await server.wait_ready()


async def test_nodes_on_different_phases_of_a_key_rotation_accept_each_other(
    tmp_path: Path, nodes_database: str
) -> None:
    """Failure 4: two nodes on one key folder. Phase 1 of a rotation (a new signing and
    encryption key, accepted, not used) reaches node A by a restart; phase 2 (used) reaches
    node B. Tokens each signs are accepted by the other, text B encrypts reads on A, and an
    Idempotency-Key resent to A replays B's answer instead of 409."""
    env = service_environment(nodes_database, tmp_path / "data")
    with server_processes() as started:
        a = ServerProcess(env=env, log_path=tmp_path / "a.log")
        b = ServerProcess(env=env, log_path=tmp_path / "b.log")
        started += [a, b]
        for node in (a, b):
            node.start()
        await asyncio.gather(a.wait_ready(), b.wait_ready())
        async with client_for(a) as on_a, client_for(b) as on_b:
            patient = await register(on_a, "patient")
            journal_cli(env, "keys", "rotate")
            journal_cli(env, "encryption", "rotate")
            # Phase 1 reaches A: it publishes (accepts) the new key and still signs with the old.
            await restart(a)
            old_kid = (await on_b.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
            jwks_a = [k["kid"] for k in (await on_a.get("/.well-known/jwks.json")).json()["keys"]]
            assert jwks_a[0] == old_kid
            assert len(jwks_a) == 2
            journal_cli(env, "keys", "promote")
            journal_cli(env, "encryption", "promote")
            # Phase 2 reaches B: it signs and encrypts with the new keys, A (phase 1) does not.
            await restart(b)

            signed_by_b = await token_from(on_b, patient)
            signed_by_a = await token_from(on_a, patient)
            assert kid_of(signed_by_b) != kid_of(signed_by_a)
            for client, token in ((on_a, signed_by_b), (on_b, signed_by_a)):
                me = await client.get("/v1/me", headers=bearer(token))
                assert me.status_code == 200, me.text

            entry = str(uuid.uuid4())
            body = checkin(entry, 6, "written on the new key")
            headers = {**bearer(signed_by_b), "Idempotency-Key": entry}
            written = await on_b.post("/v1/checkins", json=body, headers=headers)
            assert written.status_code == 201, written.text
            read_on_a = await on_a.get(f"/v1/checkins/{entry}", headers=bearer(signed_by_a))
            assert read_on_a.status_code == 200, read_on_a.text
            assert read_on_a.json()["note"] == "written on the new key"
            resent = await on_a.post("/v1/checkins", json=body, headers=headers)
            assert resent.status_code == 201, resent.text
            assert resent.headers["idempotent-replayed"] == "true"
            assert resent.json() == written.json()
        for node in (a, b):
            assert_no_unhandled(node)


async def token_from(client: httpx.AsyncClient, person: Person) -> str:
    response = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": person.email, "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


def kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid: str = header["kid"]
    return kid
