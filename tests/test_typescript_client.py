"""An integrator's TypeScript check: types generated from the committed spec drive a real server.

`openapi/ts-client/` holds an integrator's script (`patient-day.ts`) and its pinned tools
(`package-lock.json`: TypeScript, openapi-typescript, openapi-fetch; installed by `make ts-client`
or, on first use, here with `npm ci`). The test copies the script into a temporary folder,
generates `schema.d.ts` there from openapi/openapi.json with openapi-typescript's default flags,
compiles with `tsc` (`--strict --noUncheckedIndexedAccess`, no casts in the script), and runs
the compiled script with node against a server process on loopback, on the suite's database:
a patient's day, a therapist's read, and the patient's access log and export.

The script reads what the server always sends directly, so a field, header or parameter that the
spec makes looser than the server fails here as a compile error, shown with its line of the
script; a wrong answer fails as the script's output. Node and npm are required: without them
this test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import ROOT
from tests.support.people import PASSWORD, register, unique_email
from tests.support.server import running_server, service_environment

APP = ROOT / "openapi" / "ts-client"
SPEC = ROOT / "openapi" / "openapi.json"
SCRIPT = "patient-day.ts"
TOOLS = ("typescript", "openapi-typescript", "openapi-fetch")
NODE_SECONDS = 300  # a bound, not an expectation: generating and compiling take seconds
THERAPIST_NAME = "Dr. Lee"
THERAPIST_CLINIC = "Test Clinic"  # what tests.support.people.invite gives
ERROR_LINE = re.compile(r"^(?P<file>[\w.-]+\.ts)\((?P<line>\d+),\d+\): error ")


def _node() -> str:
    """node, with the pinned tools installed in openapi/ts-client/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    needs = "this test needs Node.js 20+ and npm on PATH (`make ts-client` installs the rest)"
    assert node, needs
    assert npm, needs
    lock = json.loads((APP / "package-lock.json").read_text())
    for tool in TOOLS:
        wanted = lock["packages"][f"node_modules/{tool}"]["version"]
        installed = APP / "node_modules" / tool / "package.json"
        if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
            subprocess.run(
                [npm, "ci", "--prefix", str(APP), "--no-audit", "--no-fund", "--loglevel=error"],
                check=True,
                timeout=NODE_SECONDS,
            )
            break
    return node


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=NODE_SECONDS, check=False
    )


def _with_source(output: str, folder: Path) -> str:
    """tsc's errors, each followed by the line of the script it points at."""
    shown: list[str] = []
    for line in output.splitlines():
        shown.append(line)
        found = ERROR_LINE.match(line)
        if found:
            source = (folder / found["file"]).read_text().splitlines()
            shown.append(f"    > {source[int(found['line']) - 1].strip()}")
    return "\n".join(shown)


def compile_script(node: str, work: Path) -> Path:
    """The script compiled against types generated from the committed spec: the .js to run."""
    for name in (SCRIPT, "tsconfig.json", "package.json"):
        shutil.copy(APP / name, work / name)
    (work / "node_modules").symlink_to(APP / "node_modules", target_is_directory=True)
    generator = APP / "node_modules" / "openapi-typescript" / "bin" / "cli.js"
    generated = _run([node, str(generator), str(SPEC), "-o", "schema.d.ts"], work)
    assert generated.returncode == 0, (
        f"openapi-typescript failed on openapi/openapi.json:\n{generated.stdout}{generated.stderr}"
    )
    tsc = APP / "node_modules" / "typescript" / "bin" / "tsc"
    compiled = _run([node, str(tsc), "-p", "tsconfig.json", "--pretty", "false"], work)
    if compiled.returncode != 0:
        errors = _with_source(compiled.stdout + compiled.stderr, work)
        # Only tsc's errors: each is a place where the spec is looser than the server.
        pytest.fail(
            f"{SCRIPT} does not compile against the types of openapi/openapi.json "
            f"({errors.count(': error TS')} errors):\n{errors}",
            pytrace=False,
        )
    return work / "build" / SCRIPT.replace(".ts", ".js")


async def test_a_patients_day_and_a_therapists_read_in_typescript(
    database_url: str, tmp_path: Path
) -> None:
    node = _node()
    work = tmp_path / "ts-client"
    work.mkdir()
    script = compile_script(node, work)
    env = service_environment(database_url, tmp_path / "data")
    async with running_server(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            # Invited by the operator (on the suite's database, as the server's), signed up.
            therapist = await register(http, "therapist", THERAPIST_NAME)
        inputs = {
            "KAP_BASE_URL": server.base_url,
            "KAP_PATIENT_EMAIL": unique_email("ts-patient"),
            "KAP_PATIENT_PASSWORD": PASSWORD,
            "KAP_THERAPIST_EMAIL": therapist.email,
            "KAP_THERAPIST_PASSWORD": PASSWORD,
            "KAP_THERAPIST_NAME": THERAPIST_NAME,
            "KAP_THERAPIST_CLINIC": THERAPIST_CLINIC,
        }
        day = await asyncio.create_subprocess_exec(
            node,
            str(script),
            cwd=work,
            env={**os.environ, **inputs},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(day.communicate(), NODE_SECONDS)
        text = output.decode(errors="replace")
        if day.returncode != 0:
            pytest.fail(
                f"{SCRIPT} failed:\n{text}\n--- server:\n{server.log_tail()}", pytrace=False
            )
    assert "patient day and therapist read: ok" in text, text
