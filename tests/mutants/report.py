"""Write the last `mutmut run`'s results as Markdown: counts, kill rate, and every surviving
mutant with its diff, so that each can be killed by a test or explained (docs/mutants/).

Reads only mutmut's command line (``results``, ``show``), run from the project's root.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))
# What a test run tells about a mutant: caught, or not.
CAUGHT = {"killed", "timeout"}
MISSED = {"survived", "no tests"}


def mutmut(*args: str) -> str:
    return subprocess.run([MUTMUT, *args], check=True, capture_output=True, text=True).stdout


def statuses() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in mutmut("results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def module_of(mutant: str) -> str:
    return mutant.split(".x_", 1)[0].split(".xǁ", 1)[0]


def report() -> str:
    found = statuses()
    by_module: dict[str, Counter[str]] = {}
    for name, status in found.items():
        by_module.setdefault(module_of(name), Counter())[status] += 1
    lines = [
        "# Mutation run",
        "",
        f"Written by `make mutants` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (mutmut, SQLite).",
        "",
        "| module | mutants | killed | timeout | survived | no tests | not run | kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total: Counter[str] = Counter()
    for module, counts in sorted(by_module.items()):
        total += counts
        lines.append(row(module, counts))
    lines.append(row("**all**", total))
    survivors = sorted(name for name, status in found.items() if status in MISSED)
    lines += ["", f"## Survivors ({len(survivors)})", ""]
    for name in survivors:
        diff = mutmut("show", name).strip()
        lines += [f"### `{name}` ({found[name]})", "", "```diff", diff, "```", ""]
    return "\n".join(lines) + "\n"


def row(module: str, counts: Counter[str]) -> str:
    caught = sum(counts[s] for s in CAUGHT)
    judged = caught + sum(counts[s] for s in MISSED)
    rate = f"{100 * caught / judged:.1f}%" if judged else "-"
    not_run = sum(n for s, n in counts.items() if s not in CAUGHT | MISSED)
    return (
        f"| {module} | {sum(counts.values())} | {counts['killed']} | {counts['timeout']} | "
        f"{counts['survived']} | {counts['no tests']} | {not_run} | {rate} |"
    )


if __name__ == "__main__":
    sys.stdout.write(report())
