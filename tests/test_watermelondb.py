"""WatermelonDB itself, unchanged, as two phones of one patient against a real server process.

`tests/watermelondb/` holds the app side: WatermelonDB 0.28 with its LokiJS adapter (pinned in
`package-lock.json`, installed with `npm ci` on first use, as the spec linter is), the schema
the README gives app developers (`schema.cjs`), the glue (`glue.cjs`), and the situations of
issue 14 (`phones.cjs`), each ending with both phones and the server holding the same entries
and every conflict reported. Node and npm are required: without them this test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

from api.resources import RESOURCES
from api.sync.watermelondb import columns
from tests.support.cluster import ROOT
from tests.support.server import running_server, service_environment

APP = ROOT / "tests" / "watermelondb"
SITUATIONS = 11
NODE_SECONDS = 300  # a bound, not an expectation: the situations take seconds


def _node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    needs = "this test needs Node.js 20+ and npm on PATH (as `make lint-spec` does)"
    assert node, needs
    assert npm, needs
    lock = json.loads((APP / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/@nozbe/watermelondb"]["version"]
    installed = APP / "node_modules" / "@nozbe" / "watermelondb" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        subprocess.run(
            [npm, "ci", "--prefix", str(APP), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            timeout=NODE_SECONDS,
        )
    return node


def test_the_app_schema_has_every_column_the_server_sends() -> None:
    node = _node()
    printed = subprocess.run(
        [node, "-e", "console.log(JSON.stringify(require('./schema.cjs').tables))"],
        cwd=APP,
        capture_output=True,
        text=True,
        check=True,
        timeout=NODE_SECONDS,
    )
    app_tables = json.loads(printed.stdout)
    assert set(app_tables) == {resource.name for resource in RESOURCES}
    for resource in RESOURCES:
        expected = {
            name: (kind, optional)
            for name, (kind, _encoding, optional) in columns(resource).items()
        }
        found = {
            c["name"]: (c["type"], c.get("isOptional", False)) for c in app_tables[resource.name]
        }
        assert found == expected, resource.name


async def test_two_watermelondb_phones_never_get_stuck(database_url: str, tmp_path: Path) -> None:
    node = _node()
    env = service_environment(database_url, tmp_path / "data")
    async with running_server(env, tmp_path / "server.log") as server:
        phones = await asyncio.create_subprocess_exec(
            node,
            "phones.cjs",
            cwd=APP,
            env={**os.environ, "BASE_URL": server.base_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(phones.communicate(), NODE_SECONDS)
        text = output.decode(errors="replace")
        assert phones.returncode == 0, f"{text}\n--- server:\n{server.log_tail()}"
    reports = [json.loads(line) for line in text.splitlines() if line.startswith('{"situation"')]
    assert len(reports) == SITUATIONS, text
    # Situations whose point is a conflict reported it on the phone that met it.
    conflicted = {r["situation"]: r["conflicts"] for r in reports}
    assert conflicted["edit against edit"] == [0, 1]
    assert conflicted["delete against edit, the edit first"] == [1, 0]
    assert conflicted["delete against edit, the delete first"] == [0, 1]
