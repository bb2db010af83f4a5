"""``make test-cluster``: three service processes behind Debian's HAProxy (deploy/haproxy.cfg),
one PostgreSQL (a throwaway cluster of its own) and Redis, on loopback. Writes under load meet a
kill -9 of one node and its restart, then a rolling restart through both phases of a key
rotation. Every write is a client as the README's contract describes: an Idempotency-Key, resent
on "unknown" and on 503/429 until it has an answer. At the end it prints how many writes were
acknowledged, lost (acknowledged, not stored) and duplicated (stored twice), and fails unless
none was lost or duplicated.

Run: ``make test-cluster`` (CLUSTER_REDIS_URL, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cluster import ROOT, free_port, migrated_database, throwaway_cluster
from tests.support.people import Person, register
from tests.support.server import ServerProcess, service_environment

NODES = 3
PATIENTS = 6
WRITERS = 12
# Bounds, not expectations: the whole run takes about a minute on a quiet machine.
BOUND = 60.0
RUN_BOUND = 600.0


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def acknowledge(self, entry: str) -> None:
        self.acknowledged.add(entry)
        for target, reached in self.waiting:
            if len(self.acknowledged) >= target and not reached.done():
                reached.set_result(None)


def haproxy_config(template: Path, bind_port: int, node_ports: list[int]) -> str:
    """deploy/haproxy.cfg, listening on ``bind_port``, its servers on the nodes' ports, and a
    faster health check (the reference's timing, scaled down)."""
    text = template.read_text()
    text = text.replace("bind :8080", f"bind 127.0.0.1:{bind_port}")
    text = re.sub(r"\n    server node\d .*", "", text)
    servers = "".join(
        f"\n    server node{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(node_ports)
    )
    text = text.replace("inter 2s fall 2 rise 2", "inter 500ms fall 2 rise 1")
    return text.rstrip() + servers + "\n"


async def write_until_answered(
    client: httpx.AsyncClient, patient: Person, tally: Tally, n: int
) -> None:
    entry = str(uuid.uuid4())
    body = {"id": entry, "mood": n % 11, "note": f"write {entry}"}
    headers = {**patient.headers, "Idempotency-Key": entry}
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            response = await client.post("/v1/checkins", json=body, headers=headers)
        except httpx.TransportError:
            tally.answers["unknown, resent"] += 1
            await asyncio.sleep(0.1)
            continue
        tally.answers[str(response.status_code)] += 1
        if response.status_code == 201:
            tally.acknowledge(entry)
            return
        if response.status_code in (429, 503):
            await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 5)
            continue
        raise AssertionError(f"write answered {response.status_code}: {response.text}")
    raise AssertionError("a write found no answer within the bound")


async def writer(
    client: httpx.AsyncClient, patients: list[Person], tally: Tally, offset: int
) -> None:
    n = offset
    while not tally.stop.is_set():
        await write_until_answered(client, patients[n % len(patients)], tally, n)
        n += WRITERS


async def stored_ids(client: httpx.AsyncClient, patient: Person) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/v1/checkins", params=params, headers=patient.headers)
        assert page.status_code == 200, page.text
        ids += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids


def journal(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "journal"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=BOUND,
    )


async def rolling_restart(nodes: list[ServerProcess]) -> None:
    for node in nodes:
        node.signal(signal.SIGTERM)
        if await node.wait_exit(BOUND) is None:
            raise AssertionError(f"node did not exit:\n{node.log_tail()}")
        node.start()
        await node.wait_ready()
        await asyncio.sleep(1.5)  # the load balancer's health check sees it ready again


async def until_more(tally: Tally, more: int) -> None:
    reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tally.waiting.append((len(tally.acknowledged) + more, reached))
    await asyncio.wait_for(reached, BOUND)


async def run(home: Path, redis_url: str) -> int:
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy not found: make test-cluster installs it with apt-get"
    with throwaway_cluster() as pg:
        database_url = await migrated_database(pg, "journal")
        env = service_environment(
            database_url,
            home / "data",
            redis_url=redis_url,
            drain_seconds=1.5,
            rate_limit_key_prefix=f"cluster-{uuid.uuid4().hex[:8]}",
        )
        nodes = [
            ServerProcess(
                env={**env, "JOURNAL_NODE_NAME": f"node{i + 1}"}, log_path=home / f"n{i}.log"
            )
            for i in range(NODES)
        ]
        port = free_port()
        config = home / "haproxy.cfg"
        config.write_text(
            haproxy_config(ROOT / "deploy" / "haproxy.cfg", port, [n.port for n in nodes])
        )
        balancer: subprocess.Popen[bytes] | None = None
        try:
            for node in nodes:
                node.start()
            await asyncio.gather(*(node.wait_ready() for node in nodes))
            with (home / "haproxy.log").open("wb") as log:
                balancer = subprocess.Popen(  # noqa: ASYNC220 - starts it, waits for nothing
                    [haproxy, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
                )
            tally = Tally()
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(BOUND)
            ) as client:
                for _ in range(100):
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                patients = [await register(client, "patient") for _ in range(PATIENTS)]
                writers = [
                    asyncio.create_task(writer(client, patients, tally, i)) for i in range(WRITERS)
                ]
                try:
                    await until_more(tally, 100)
                    print("kill -9 of node2 under load, then its restart", flush=True)
                    nodes[1].kill()
                    await until_more(tally, 50)
                    nodes[1].start()
                    await nodes[1].wait_ready()
                    await until_more(tally, 50)
                    print("key rotation, phase 1 (accepted), rolling restart", flush=True)
                    await asyncio.to_thread(journal, env, "keys", "rotate")
                    await asyncio.to_thread(journal, env, "encryption", "rotate")
                    await rolling_restart(nodes)
                    print("key rotation, phase 2 (used), rolling restart", flush=True)
                    await asyncio.to_thread(journal, env, "keys", "promote")
                    await asyncio.to_thread(journal, env, "encryption", "promote")
                    await rolling_restart(nodes)
                    await until_more(tally, 50)
                finally:
                    tally.stop.set()
                    results = await asyncio.gather(*writers, return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                stored: list[str] = []
                for patient in patients:
                    stored += await stored_ids(client, patient)
            lost = tally.acknowledged - set(stored)
            duplicated = len(stored) - len(set(stored))
            print(
                f"acknowledged {len(tally.acknowledged)} / lost {len(lost)} / "
                f"duplicated {duplicated} (stored {len(stored)}); answers {dict(tally.answers)}"
            )
            for failure in failures:
                print(f"writer failed: {failure!r}")
            return 0 if not lost and not duplicated and not failures else 1
        finally:
            if balancer is not None:
                balancer.terminate()
                balancer.wait(timeout=BOUND)
            for node in nodes:
                node.kill()


def main() -> None:
    redis_url = os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0")
    home = Path(tempfile.mkdtemp(prefix="journal-cluster-"))
    try:
        code = asyncio.run(asyncio.wait_for(run(home, redis_url), RUN_BOUND))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
