"""``python -m bench``: the service and the raw baseline under the same load, one table.

For each worker count: start the service (PostgreSQL, encryption on, rate limits lifted), run
every scenario (warm-up, then rounds), stop it; start the baseline, run the scenarios it has,
stop it. Then scenario 5 (one page's latency over a short and a long history). Print the
tables and append them to bench/RESULTS.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import db, fixtures, load, procs, report
from bench.fixtures import World

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
UNLIMITED = "10000000/minute"
SERVICE_SLOTS = 10  # the service's default: JOURNAL_DB_POOL_SIZE, and as many requests at once


@dataclass(frozen=True)
class Config:
    workers: tuple[int, ...]
    connections: int
    rounds: int
    seconds: int
    warmup: int
    scenarios: frozenset[int]
    history: int
    history_seconds: int
    results: Path
    append: bool
    service_slots: int  # requests served at once by each service process, and its pool size


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    mode: str  # "get" or "post" (bench/load.lua)
    path: Callable[[World], str]
    tokens: Callable[[World], list[str]]
    in_baseline: bool
    read_token: bool = False  # mint a fresh therapist read token before every wrk run

    @property
    def name(self) -> str:
        return f"{self.number}. {self.title}"


SCENARIOS = (
    Scenario(
        1,
        "check-in POST",
        "post",
        lambda w: "/v1/checkins",
        lambda w: [p.access for p in w.writers],
        in_baseline=True,
    ),
    Scenario(
        2,
        "check-in list GET (50)",
        "get",
        lambda w: "/v1/checkins?limit=50",
        lambda w: [w.reader.access],
        in_baseline=True,
    ),
    Scenario(
        3,
        "therapist list GET (50)",
        "get",
        lambda w: f"/v1/patients/{w.reader.id}/checkins?limit=50",
        lambda w: [w.read_token],
        in_baseline=True,
        read_token=True,
    ),
    Scenario(
        4,
        "sync pull (200)",
        "get",
        lambda w: "/v1/sync?cursor=0&limit=200",
        lambda w: [w.reader.access],
        in_baseline=False,
    ),
)


# --- environments -------------------------------------------------------------------------


def _clean_environment() -> dict[str, str]:
    """The caller's environment without anything that would configure the service."""
    dropped = ("JOURNAL_", "DATABASE_URL", "REDIS_URL", "BENCH_")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def service_env(database: str, data_dir: Path, slots: int) -> dict[str, str]:
    """The service as it would be deployed: each process serves ``slots`` requests at once
    (the rest queue inside it) from a pool of as many connections."""
    return {
        **_clean_environment(),
        "DATABASE_URL": db.sqlalchemy_url(database),
        "JOURNAL_DATA_DIR": str(data_dir),
        "JOURNAL_LOG_LEVEL": "WARNING",
        "JOURNAL_DB_POOL_SIZE": str(slots),
        "JOURNAL_MAX_CONCURRENT_REQUESTS": str(slots),
        "JOURNAL_RATE_LIMIT_PER_TOKEN": UNLIMITED,
        "JOURNAL_RATE_LIMIT_PER_ADDRESS": UNLIMITED,
        "JOURNAL_RATE_LIMIT_TOKEN_PER_ADDRESS": UNLIMITED,
        "JOURNAL_RATE_LIMIT_TOKEN_PER_ACCOUNT": UNLIMITED,
        # One load generator is every caller here (one address; scenario 3's 64 connections
        # share one read token), so the per-caller share of the slots (half of them by
        # default) is lifted as the rate limits are: the baseline has neither.
        "JOURNAL_MAX_REQUESTS_PER_CALLER": "1000",
    }


def baseline_env(database: str, pool_size: int) -> dict[str, str]:
    return {
        **_clean_environment(),
        "BENCH_BASELINE_DSN": db.dsn(database),
        "BENCH_BASELINE_POOL_SIZE": str(pool_size),
    }


def make_keys(env: dict[str, str]) -> None:
    """Create the signing and encryption keys once, so that every worker shares them."""
    code = (
        "from api.settings import Settings; from api.crypto import load_cipher; "
        "from api.auth.keys import load_key_ring; s = Settings(); load_cipher(s); load_key_ring(s)"
    )
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)  # noqa: S603


def pool_size(cfg: Config, workers: int) -> int:
    """The baseline's connections per process: the concurrency each worker sees."""
    return math.ceil(cfg.connections / workers)


# --- one measurement ----------------------------------------------------------------------


def measure_round(
    server: procs.Server,
    database: str,
    url: str,
    mode: str,
    tokens_file: Path,
    seconds: int,
    connections: int,
) -> report.Round:
    """One wrk run, with the server's CPU time and memory and PostgreSQL's CPU time around it."""
    pg_before = procs.cpu_snapshot(procs.postgres_backends(database))
    before = procs.cpu_snapshot(procs.process_tree(server.pid))
    with procs.MemorySampler(server.pid) as memory:
        result = load.run_wrk(url, mode, tokens_file, seconds, connections)
    after = procs.cpu_snapshot(procs.process_tree(server.pid))
    pg_after = procs.cpu_snapshot(procs.postgres_backends(database))
    per_request = 1000 / max(result.requests, 1)
    peaks: dict[str, list[int]] = {}
    for pid, kib in memory.peaks.items():
        peaks.setdefault(server.role(pid), []).append(kib)
    return report.Round(
        requests=result.requests,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        server_cpu_ms_per_request=procs.cpu_delta(before, after) * per_request,
        pg_cpu_ms_per_request=procs.cpu_delta(pg_before, pg_after) * per_request,
        wrk_cpu_ms_per_request=result.wrk_cpu_seconds * per_request,
        peak_rss_kib=peaks,
    )


def _written_rows(scenario: Scenario, target: str) -> Callable[[str], int] | None:
    """What a request of this scenario must add to the database, to check it really did."""
    if scenario.number == 1:
        return db.count_checkins
    if scenario.number == 3 and target == "service":
        return db.count_audit_records
    return None


def check_answer(server: procs.Server, scenario: Scenario, world: World) -> None:
    """One request by hand before the load: the right status and a full page."""
    token = scenario.tokens(world)[0]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}{scenario.path(world)}"
    if scenario.mode == "post":
        headers["Idempotency-Key"] = f"check-{uuid.uuid4()}"
        body = {"id": str(uuid.uuid4()), "mood": 5, "note": "checking"}
        response = httpx.post(url, json=body, headers=headers, timeout=30)
        expected = 201
    else:
        response = httpx.get(url, headers=headers, timeout=30)
        expected = 200
    if response.status_code != expected:
        raise RuntimeError(f"{server.name} {scenario.name}: {response.status_code} {response.text}")
    content = response.json()
    if scenario.number in (2, 3) and len(content["items"]) != 50:
        raise RuntimeError(f"{server.name} {scenario.name}: {len(content['items'])} items, not 50")
    if scenario.number == 4 and (
        sum(len(v) for v in content["changes"].values()) != 200 or not content["has_more"]
    ):
        raise RuntimeError(f"{server.name} {scenario.name}: not 200 changes with more to come")


def run_scenario(
    server: procs.Server,
    target: str,
    scenario: Scenario,
    world: World,
    cfg: Config,
    database: str,
    work_dir: Path,
) -> report.Measurement:
    """Warm-up, then ``cfg.rounds`` measured rounds."""
    measurement = report.Measurement(server.workers, scenario.name, target, cfg.connections)
    tokens_file = work_dir / f"tokens-{scenario.number}.txt"
    url = f"{server.url}{scenario.path(world)}"

    def fresh_tokens() -> Path:
        if scenario.read_token and target == "service":
            fixtures.mint_read_token(server.url, world)
        return fixtures.write_tokens(tokens_file, scenario.tokens(world))

    warmup_tokens = fresh_tokens()
    check_answer(server, scenario, world)
    load.run_wrk(url, scenario.mode, warmup_tokens, cfg.warmup, cfg.connections)
    counter = _written_rows(scenario, target)
    for n in range(cfg.rounds):
        tokens = fresh_tokens()
        rows_before = counter(database) if counter else 0
        measured = measure_round(
            server, database, url, scenario.mode, tokens, cfg.seconds, cfg.connections
        )
        if counter:
            measured.written = counter(database) - rows_before
        measurement.rounds.append(measured)
        _print_round(server, scenario, n, measured)
    return measurement


def _print_round(server: procs.Server, scenario: Scenario, n: int, r: report.Round) -> None:
    written = f", {r.written} rows written" if r.written is not None else ""
    print(
        f"  {server.name} {server.workers}w {scenario.name} round {n + 1}: {r.rps:,.0f} req/s, "
        f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
        f"{r.server_cpu_ms_per_request:.2f} ms CPU/req, {r.errors} errors{written}",
        flush=True,
    )
    if r.written is not None and r.written < r.requests - r.errors:
        print(f"  WARNING: {r.requests - r.errors} answered but {r.written} rows written")


def run_history(
    server: procs.Server, target: str, world: World, cfg: Config, work_dir: Path
) -> report.HistoryResult:
    """Scenario 5: the p50 of one list page, one connection, short history then long."""
    result = report.HistoryResult(server.workers, target, 100, cfg.history, [], [])
    url = f"{server.url}/v1/checkins?limit=50"
    for person, into in ((world.short, result.short_p50_ms), (world.long, result.long_p50_ms)):
        tokens = fixtures.write_tokens(work_dir / "tokens-5.txt", [person.access])
        load.run_wrk(url, "get", tokens, 2, 1)
        for _ in range(cfg.rounds):
            into.append(load.run_wrk(url, "get", tokens, cfg.history_seconds, 1).p50_ms)
    print(
        f"  {server.name} {server.workers}w history: p50 {result.short_p50_ms} ms (100) vs "
        f"{result.long_p50_ms} ms ({cfg.history:,})",
        flush=True,
    )
    return result


# --- the whole run ------------------------------------------------------------------------


@dataclass
class Outcome:
    measurements: list[report.Measurement]
    history: list[report.HistoryResult]


def _selected(cfg: Config, target: str) -> list[Scenario]:
    return [
        s for s in SCENARIOS if s.number in cfg.scenarios and (target == "service" or s.in_baseline)
    ]


@contextmanager
def _phase(title: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"{title} ...", flush=True)
    yield
    print(f"{title}: {time.monotonic() - started:.0f} s", flush=True)


def setup_world(cfg: Config, database: str, data_dir: Path, work_dir: Path) -> World:
    """Accounts and data, through a service of its own: the one measured next starts fresh
    (password hashing at sign-up would otherwise stay in its peak memory)."""
    env = service_env(database, data_dir, 8)
    with (
        _phase("accounts, 300-entry journal, grant, seeded histories"),
        procs.running("setup", "api.main:app", 1, env, ROOT, work_dir) as server,
    ):
        world = fixtures.build_world(
            server.url, writers=cfg.connections, database_url=db.sqlalchemy_url(database)
        )
        db.seed_history(database, world.short.id, 100)
        db.seed_history(database, world.long.id, cfg.history)
    return world


def run_target(
    server: procs.Server,
    target: str,
    world: World,
    cfg: Config,
    database: str,
    work_dir: Path,
    outcome: Outcome,
) -> None:
    for scenario in _selected(cfg, target):
        if target == "service":
            fixtures.refresh_all(server.url, world)  # access tokens last 15 minutes
        with _phase(f"{target}, {server.workers} worker(s), {scenario.name}"):
            outcome.measurements.append(
                run_scenario(server, target, scenario, world, cfg, database, work_dir)
            )
    if 5 in cfg.scenarios and server.workers == cfg.workers[0]:
        with _phase(f"{target}, {server.workers} worker(s), 5. history length"):
            outcome.history.append(run_history(server, target, world, cfg, work_dir))


def run_all(cfg: Config, database: str, work_dir: Path) -> Outcome:
    outcome = Outcome([], [])
    data_dir = work_dir / "data"
    make_keys(service_env(database, data_dir, 1))
    world = setup_world(cfg, database, data_dir, work_dir)
    for workers in cfg.workers:
        size = pool_size(cfg, workers)
        env = service_env(database, data_dir, cfg.service_slots)
        with procs.running("service", "api.main:app", workers, env, ROOT, work_dir) as service:
            run_target(service, "service", world, cfg, database, work_dir, outcome)
        env = baseline_env(database, size)
        with procs.running("baseline", "bench.baseline:app", workers, env, ROOT, work_dir) as base:
            run_target(base, "baseline", world, cfg, database, work_dir, outcome)
    return outcome


# --- reporting ----------------------------------------------------------------------------


def _git(*args: str) -> str:
    finished = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return finished.stdout.strip()


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_meta(cfg: Config, started: float, load_before: str) -> dict[str, str]:
    dirty = _git("status", "--porcelain", "--", "api", "migrations", "pyproject.toml")
    pools = ", ".join(f"{pool_size(cfg, w)} per process at {w} worker(s)" for w in cfg.workers)
    return {
        "date": datetime.now(UTC).strftime("%a %b %d %H:%M:%S UTC %Y"),
        "commit": _git("rev-parse", "--short", "HEAD") + (" (api/ modified)" if dirty else ""),
        "machine": f"{os.cpu_count()} cores; load average (1, 5, 15 min) before the run "
        f"{load_before}, after it {_load_average()}",
        "load": f"wrk, 1 thread, {cfg.connections} connections, keep-alive",
        "durations": f"{cfg.warmup} s warm-up then {cfg.rounds} rounds x {cfg.seconds} s per "
        f"scenario and target, medians of the rounds; scenario 5: 1 connection, 2 s warm-up, "
        f"{cfg.rounds} x {cfg.history_seconds} s per history",
        "pools": f"the baseline's asyncpg pool: {pools}; the service: "
        f"{cfg.service_slots} requests at once per process (the rest queue), from a pool of "
        f"{cfg.service_slots} connections (JOURNAL_MAX_CONCURRENT_REQUESTS, JOURNAL_DB_POOL_SIZE)",
        "wall time": f"{time.monotonic() - started:.0f} s",
    }


def render(outcome: Outcome, meta: dict[str, str]) -> str:
    return report.run_block(
        meta,
        [
            ("### Every scenario", report.results_table(outcome.measurements)),
            (
                "### Service against baseline (scenarios 1-3)",
                report.ratio_table(outcome.measurements),
            ),
            (
                "### 5. History length",
                report.history_table(outcome.history) if outcome.history else "",
            ),
        ],
    )


def save_raw(outcome: Outcome, meta: dict[str, str]) -> Path:
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    path = out / f"run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    raw = {"meta": meta, **asdict(outcome)}
    path.write_text(json.dumps(raw, indent=1))
    return path


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma separated")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="per round")
    parser.add_argument("--warmup", type=int, default=3, help="seconds, per scenario and target")
    parser.add_argument("--scenarios", default="1,2,3,4,5")
    parser.add_argument("--history", type=int, default=100_000, help="scenario 5's long history")
    parser.add_argument("--history-seconds", type=int, default=3, help="per round, scenario 5")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--no-append", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up")
    parser.add_argument(
        "--service-slots",
        type=int,
        default=SERVICE_SLOTS,
        help="requests each service process serves at once, and its pool size",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    return Config(
        workers=tuple(int(w) for w in args.workers.split(",")),
        connections=args.connections,
        rounds=1 if quick else args.rounds,
        seconds=3 if quick else args.seconds,
        warmup=1 if quick else args.warmup,
        scenarios=frozenset(int(s) for s in args.scenarios.split(",")),
        history=10_000 if quick else args.history,
        history_seconds=1 if quick else args.history_seconds,
        results=args.results,
        append=not (args.no_append or quick),
        service_slots=args.service_slots,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    started = time.monotonic()
    load_before = _load_average()
    load.ensure_wrk()
    with (
        tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp,
        db.fresh_database(ROOT) as database,
    ):
        print(f"database {database}, work dir {tmp}", flush=True)
        outcome = run_all(cfg, database, Path(tmp))
    meta = run_meta(cfg, started, load_before)
    block = render(outcome, meta)
    print(f"\n{block}")
    print(f"raw rounds: {save_raw(outcome, meta)}")
    if cfg.append:
        report.append_results(cfg.results, block)
        print(f"appended to {cfg.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
