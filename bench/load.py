"""The load generator: wrk (Debian's package), driven by bench/load.lua."""

from __future__ import annotations

import json
import resource
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("load.lua")
WRK_TIMEOUT = "10s"  # a request slower than this counts as a timeout error


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing (the machine runs as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False, timeout=600).returncode != 0:  # noqa: S603
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600)  # noqa: S607
        subprocess.run(install, check=True, timeout=600)  # noqa: S603
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed")
    return found


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # connect, read, write, timeout, and answers with a status of 400 or more
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wrk_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str, mode: str, tokens_file: Path, seconds: int, connections: int, threads: int = 1
) -> LoadResult:
    """One wrk run of ``seconds`` against ``url`` ("get" or "post" mode, see load.lua)."""
    command = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(SCRIPT),
        url,
        "--",
        mode,
        str(tokens_file),
        secrets.token_hex(4),  # makes the ids and Idempotency-Keys of this run unique
    ]
    cpu_before = _children_cpu()
    finished = subprocess.run(  # noqa: S603 - wrk with fixed arguments
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    wrk_cpu = _children_cpu() - cpu_before
    line = next((ln for ln in finished.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = sum(
        raw[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    )
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        wrk_cpu_seconds=wrk_cpu,
    )
