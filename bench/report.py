"""Rounds into medians, medians into the tables printed and appended to RESULTS.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

RPS_TARGET = 0.5  # service req/s at least half the baseline's (scenarios 1-3)
P99_TARGET = 3.0  # service p99 at most three times the baseline's (scenarios 1-3)
HISTORY_TARGET = 0.2  # the two pages' p50 within 20% of each other (scenario 5)


@dataclass
class Round:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms_per_request: float
    pg_cpu_ms_per_request: float
    wrk_cpu_ms_per_request: float
    peak_rss_kib: dict[str, list[int]]  # role (worker, master, helper) -> each process's peak
    written: int | None = None  # rows the round added where that is checked (checkins, audit)


@dataclass
class Measurement:
    """One scenario against one target with one worker count: its rounds."""

    workers: int
    scenario: str
    target: str  # "service" or "baseline"
    connections: int
    rounds: list[Round] = field(default_factory=list)

    def median(self, name: str) -> float:
        values: list[float] = [getattr(r, name) for r in self.rounds]
        return statistics.median(values)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    def peak_rss_mib(self, role: str) -> list[float]:
        """Each process's peak over all rounds (processes listed in pid order per round)."""
        peaks: list[int] = []
        for r in self.rounds:
            for i, kib in enumerate(sorted(r.peak_rss_kib.get(role, []), reverse=True)):
                if i < len(peaks):
                    peaks[i] = max(peaks[i], kib)
                else:
                    peaks.append(kib)
        return [kib / 1024 for kib in peaks]


def _rss_text(m: Measurement) -> str:
    text = " / ".join(f"{mib:.0f}" for mib in m.peak_rss_mib("worker"))
    for role in ("master", "helper"):
        others = m.peak_rss_mib(role)
        if others:
            text += f"; {role} " + " / ".join(f"{mib:.0f}" for mib in others)
    return text


def results_table(measurements: list[Measurement]) -> str:
    lines = [
        "| workers | scenario | target | req/s | p50 ms | p99 ms | server CPU ms/req "
        "| PostgreSQL CPU ms/req | peak RSS MiB per process | errors |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for m in measurements:
        lines.append(
            f"| {m.workers} | {m.scenario} | {m.target} | {m.median('rps'):,.0f} "
            f"| {m.median('p50_ms'):.1f} | {m.median('p99_ms'):.1f} "
            f"| {m.median('server_cpu_ms_per_request'):.2f} "
            f"| {m.median('pg_cpu_ms_per_request'):.2f} | {_rss_text(m)} | {m.errors} |"
        )
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def ratio_table(measurements: list[Measurement]) -> str:
    lines = [
        "| workers | scenario | req/s service / baseline (target ≥ 0.5) "
        "| p99 service / baseline (target ≤ 3) | CPU/req service / baseline |",
        "| ---: | --- | --- | --- | ---: |",
    ]
    baselines = {(m.workers, m.scenario): m for m in measurements if m.target == "baseline"}
    for m in measurements:
        base = baselines.get((m.workers, m.scenario))
        if m.target != "service" or base is None:
            continue
        rps = m.median("rps") / base.median("rps")
        p99 = m.median("p99_ms") / base.median("p99_ms")
        cpu = m.median("server_cpu_ms_per_request") / base.median("server_cpu_ms_per_request")
        lines.append(
            f"| {m.workers} | {m.scenario} | {rps:.2f} {_verdict(rps >= RPS_TARGET)} "
            f"| {p99:.1f}x {_verdict(p99 <= P99_TARGET)} | {cpu:.1f}x |"
        )
    return "\n".join(lines)


@dataclass
class HistoryResult:
    """Scenario 5: one page's latency with one connection, short and long history."""

    workers: int
    target: str
    short_entries: int
    long_entries: int
    short_p50_ms: list[float]
    long_p50_ms: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.long_p50_ms) / statistics.median(self.short_p50_ms)


def history_table(results: list[HistoryResult]) -> str:
    lines = [
        "| workers | target | p50 ms, 100 entries | p50 ms, 100,000 entries "
        "| long / short (target within 20%) |",
        "| ---: | --- | ---: | ---: | --- |",
    ]
    for h in results:
        met = abs(h.ratio - 1) <= HISTORY_TARGET
        lines.append(
            f"| {h.workers} | {h.target} | {statistics.median(h.short_p50_ms):.2f} "
            f"| {statistics.median(h.long_p50_ms):.2f} | {h.ratio:.2f} {_verdict(met)} |"
        )
    return "\n".join(lines)


def run_block(meta: dict[str, str], tables: list[tuple[str, str]]) -> str:
    heading = f"## Run of {meta['date']} at {meta['commit']}"
    details = "\n".join(f"- {key}: {value}" for key, value in meta.items())
    body = "\n\n".join(f"{title}\n\n{table}" for title, table in tables if table)
    return f"{heading}\n\n{details}\n\n{body}\n"


RESULTS_HEADER = """# Benchmark results

Each run of `make bench` (`python -m bench`) appends its tables below; see README.md for what
the columns mean. Compare runs only at the same settings, on an otherwise idle machine.
"""


def append_results(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else RESULTS_HEADER
    path.write_text(f"{text.rstrip()}\n\n{block}")
