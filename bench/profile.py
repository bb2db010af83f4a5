"""``python -m bench.profile``: where one service worker spends its CPU under the bench's load.

Starts the service with one worker on a fresh database (as ``python -m bench`` does), loads it
with wrk for each scenario, and samples the worker meanwhile with py-spy (``record --nonblocking
--gil --function``: the worker is never paused, so the sampling does not slow it, and only the
thread holding the GIL is sampled, so the samples follow its CPU time). Prints,
per scenario, the worker's CPU per request and how it splits: by function of the service (time
inside it, callees included), by named costs in the libraries underneath, and by package of the
innermost frame. Raw stacks (flamegraph.pl's folded format) go to bench/out/.

py-spy is not a dependency of the service: ``pip install py-spy`` anywhere and put it on PATH,
or pass ``--py-spy PATH``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import db, fixtures, load, procs, runner

# Costs in the libraries under the service, each named by a pattern that marks them. "in":
# samples with a matching frame anywhere on the stack (callees included); "leaf": samples whose
# innermost frame matches; "thread": samples of threads other than the event loop's.
MARKERS = (
    ("SQLAlchemy pool pre-ping (a round trip per checkout)", "in", "_async_ping"),
    ("BEGIN (asyncpg Transaction.start)", "in", r"^Transaction\.start \(asyncpg"),
    ("COMMIT (AsyncSession.commit)", "in", r"^AsyncSession\.commit "),
    ("Core statements (AsyncConnection.execute)", "in", r"^AsyncConnection\.execute "),
    ("ORM: statement compile and cache key", "in", r"_compile_w_cache|_generate_cache_key"),
    ("ORM: rows to objects (loading.instances)", "in", r"^instances \(sqlalchemy/orm/loading"),
    ("ORM: flush (unit of work)", "in", r"^Session\._flush "),
    ("FastAPI: dependencies (all of them, auth included)", "in", r"^solve_dependencies "),
    ("FastAPI: sync dependencies sent to the threadpool", "in", r"^run_in_threadpool "),
    ("threads other than the event loop (the threadpool)", "thread", ""),
    ("pydantic: model_validate", "in", r"^BaseModel\.model_validate "),
    ("pydantic: model_dump_json", "in", r"^BaseModel\.model_dump_json "),
    ("PyJWT decode and Ed25519 verify", "in", r"^PyJWT\.decode "),
    ("AES-GCM (FieldCipher.encrypt and decrypt)", "in", r"^FieldCipher\.(en|de)crypt "),
    ("structlog (the access log line, dropped at WARNING)", "in", r"\(structlog/"),
    ("rate limiter (limits, in memory)", "in", r"\(limits/"),
    ("asyncpg protocol (C code, under its Python callers)", "leaf", r"\(asyncpg/"),
    ("the event loop's own C code (uvloop: I/O, callbacks)", "leaf", r"^Runner\.run "),
)
WRAPPERS = re.compile(r"^(Envelope|Gate|_Answer)\.")


@dataclass
class Profile:
    scenario: str
    requests: int
    cpu_seconds: float
    samples: int
    rate: int
    stacks: Counter[tuple[str, ...]]

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(self.requests, 1)

    @property
    def sampled_seconds(self) -> float:
        return self.samples / self.rate


def find_py_spy(given: str | None) -> str:
    candidates = [given, shutil.which("py-spy"), str(runner.ROOT / ".venv" / "bin" / "py-spy")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("py-spy not found: `pip install py-spy` and put it on PATH, or --py-spy PATH")


def read_folded(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _main_thread(stack: tuple[str, ...]) -> bool:
    return not stack[0].startswith("Thread._bootstrap ")


def marked(stacks: Counter[tuple[str, ...]], kind: str, pattern: str) -> int:
    matcher = re.compile(pattern)
    if kind == "thread":
        return sum(n for stack, n in stacks.items() if not _main_thread(stack))
    if kind == "leaf":
        return sum(n for stack, n in stacks.items() if matcher.search(stack[-1]))
    return sum(n for stack, n in stacks.items() if any(matcher.search(f) for f in stack))


def inclusive_functions(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    """Samples inside each function of the service (api/), callees included, once per sample;
    the middleware, which wraps every request, left out."""
    counts: Counter[str] = Counter()
    for stack, n in stacks.items():
        for frame in {f for f in stack if "(api/" in f and not WRAPPERS.match(f)}:
            counts[frame] += n
    return counts


def innermost_functions(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    """Each sample given to the innermost function of the service on its stack (so with the
    library code it called directly): a partition of all samples. Samples with no service
    frame go to the framework, the event loop, or another thread."""
    counts: Counter[str] = Counter()
    for stack, n in stacks.items():
        ours = [f for f in stack if "(api/" in f]
        if ours:
            counts[ours[-1]] += n
        elif not _main_thread(stack):
            counts["(another thread: the threadpool)"] += n
        else:
            counts[f"(no service frame; innermost in {package_of(stack[-1])})"] += n
    return counts


def package_of(frame: str) -> str:
    found = re.search(r"\(([^/:)]+)", frame)
    name = found.group(1) if found else "?"
    return name.removesuffix(".py") if name.endswith(".py") else name


def leaf_packages(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for stack, n in stacks.items():
        counts[package_of(stack[-1])] += n
    return counts


def render(profile: Profile, top: int) -> str:
    total = profile.samples or 1

    def ms(n: int) -> str:
        return f"{100 * n / total:5.1f}% | {profile.cpu_ms_per_request * n / total:5.2f}"

    lines = [
        f"### {profile.scenario}",
        "",
        f"{profile.requests} requests, {profile.cpu_ms_per_request:.2f} ms worker CPU per "
        f"request, {profile.samples} samples ({profile.sampled_seconds:.1f} s sampled against "
        f"{profile.cpu_seconds:.1f} s of worker CPU). The ms/req columns share the measured CPU "
        "per request out in proportion to the samples.",
        "",
        "| service function, callees included (middleware left out) | share | ms/req |",
        "| --- | ---: | ---: |",
    ]
    for frame, n in inclusive_functions(profile.stacks).most_common(top):
        lines.append(f"| `{frame}` | {ms(n)} |")
    lines += [
        "",
        "| innermost service function (each sample counted once) | share | ms/req |",
        "| --- | ---: | ---: |",
    ]
    for frame, n in innermost_functions(profile.stacks).most_common(top):
        lines.append(f"| `{frame}` | {ms(n)} |")
    lines += ["", "| cost underneath | share | ms/req |", "| --- | ---: | ---: |"]
    for label, kind, pattern in MARKERS:
        lines.append(f"| {label} | {ms(marked(profile.stacks, kind, pattern))} |")
    lines += ["", "| package of the innermost frame | share | ms/req |", "| --- | ---: | ---: |"]
    for package, n in leaf_packages(profile.stacks).most_common(12):
        lines.append(f"| {package} | {ms(n)} |")
    return "\n".join(lines)


def profile_scenario(
    server: procs.Server,
    scenario: runner.Scenario,
    world: fixtures.World,
    args: argparse.Namespace,
    work_dir: Path,
    out_dir: Path,
) -> Profile:
    fixtures.refresh_all(server.url, world)
    if scenario.read_token:
        fixtures.mint_read_token(server.url, world)
    tokens = fixtures.write_tokens(work_dir / "tokens.txt", scenario.tokens(world))
    url = f"{server.url}{scenario.path(world)}"
    load.run_wrk(url, scenario.mode, tokens, 3, args.connections)
    folded = out_dir / f"profile-{scenario.number}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.folded"
    command = [
        args.py_spy,
        "record",
        "--pid",
        str(server.pid),
        "--rate",
        str(args.rate),
        "--duration",
        str(args.seconds),
        "--format",
        "raw",
        *([] if args.lines else ["--function"]),
        "--nonblocking",
        *(["--gil"] if args.gil else []),
        "--output",
        str(folded),
    ]
    before = procs.cpu_seconds(server.pid) or 0.0
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        result = load.run_wrk(url, scenario.mode, tokens, args.seconds, args.connections)
        cpu = (procs.cpu_seconds(server.pid) or 0.0) - before
        spy.wait(timeout=args.seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    stacks = read_folded(folded)
    return Profile(scenario.name, result.requests, cpu, sum(stacks.values()), args.rate, stacks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--scenarios", default="1,2,3")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--py-spy", default=None)
    parser.add_argument(
        "--lines", action="store_true", help="frames by line, not by function (folded files)"
    )
    parser.add_argument(
        "--all-threads",
        dest="gil",
        action="store_false",
        help="sample every thread py-spy deems active, not only the one holding the GIL",
    )
    args = parser.parse_args(argv)
    args.py_spy = find_py_spy(args.py_spy)
    load.ensure_wrk()
    wanted = {int(s) for s in args.scenarios.split(",")}
    out_dir = runner.BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    sections = []
    with (
        tempfile.TemporaryDirectory(prefix="journal-profile-") as tmp,
        db.fresh_database(runner.ROOT) as database,
    ):
        work_dir = Path(tmp)
        env = runner.service_env(database, work_dir / "data", runner.SERVICE_SLOTS)
        runner.make_keys(env)
        with procs.running("service", "api.main:app", 1, env, runner.ROOT, work_dir) as server:
            world = fixtures.build_world(
                server.url, writers=args.connections, database_url=db.sqlalchemy_url(database)
            )
            for scenario in runner.SCENARIOS:
                if scenario.number in wanted:
                    profile = profile_scenario(server, scenario, world, args, work_dir, out_dir)
                    sections.append(render(profile, args.top))
                    print(sections[-1], "\n", flush=True)
    report = out_dir / f"profile-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.md"
    report.write_text("\n\n".join(sections) + "\n")
    print(f"written to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
