"""Real service processes: ``uvicorn api.main:app`` on a free loopback port, as deployed.

Each process runs in its own process group, so a kill reaches anything it started; every
process is killed and reaped on leaving ``running_servers`` whatever happened. Their output goes
to a log file, shown by ``ServerProcess.log_tail`` when an assertion needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cluster import ROOT, clean_environment, free_port

UVICORN = ROOT / ".venv" / "bin" / "uvicorn"
# A bound, not an expectation: the process is normally serving in about a second.
READY_SECONDS = 60.0
UNLIMITED = "1000000/minute"


def service_environment(
    database_url: str, data_dir: Path, **settings: str | int | float
) -> dict[str, str]:
    """The environment of a service process: the database, a data folder shared by the
    processes of one test (so they share signing and encryption keys), quiet logs, cheap
    hashing, and rate limits out of the way."""
    env = clean_environment()
    env.update(
        {
            "DATABASE_URL": database_url,
            "JOURNAL_DATA_DIR": str(data_dir),
            "JOURNAL_LOG_LEVEL": "WARNING",
            "JOURNAL_RATE_LIMIT_PER_TOKEN": UNLIMITED,
            "JOURNAL_RATE_LIMIT_PER_ADDRESS": UNLIMITED,
            "JOURNAL_RATE_LIMIT_TOKEN_PER_ADDRESS": UNLIMITED,
            "JOURNAL_RATE_LIMIT_TOKEN_PER_ACCOUNT": UNLIMITED,
            "JOURNAL_RATE_LIMIT_PAIRING_PER_ACCOUNT": UNLIMITED,
            "JOURNAL_RATE_LIMIT_PAIRING_PER_ADDRESS": UNLIMITED,
            "JOURNAL_PASSWORD_HASH_MEMORY_KIB": "1024",
            "JOURNAL_PASSWORD_HASH_TIME_COST": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"JOURNAL_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@dataclass
class ServerProcess:
    """One uvicorn process; ``start`` it (again after a kill: same port, same settings)."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.reap()
        argv = [
            str(UVICORN),
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {' '.join(argv[1:])}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches all of it
            )

    async def wait_ready(self, seconds: float = READY_SECONDS) -> None:
        """Poll /healthz until it answers 200; fail (with the log) if the deadline passes or the
        process dies first."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.process is None or self.process.poll() is not None:
                    raise AssertionError(f"server exited while starting:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not ready in {seconds}s:\n{self.log_tail()}")
                await asyncio.sleep(0.05)  # nothing to await but the port: poll it

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the server process itself."""
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the whole process group (no cleanup, no goodbye) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)

    async def wait_exit(self, seconds: float) -> int | None:
        """The exit code once the process ends within ``seconds``, else None."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.02)  # Popen offers nothing to await: poll it
        return self.process.poll()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def server_processes() -> Iterator[list[ServerProcess]]:
    """Collects the processes a test starts; kills every one of them on leaving."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


@contextlib.asynccontextmanager
async def running_server(
    env: dict[str, str], log_path: Path, *extra_args: str
) -> AsyncIterator[ServerProcess]:
    """A started, ready server, killed (process group) on leaving."""
    server = ServerProcess(env=env, log_path=log_path, extra_args=extra_args)
    try:
        server.start()
        await server.wait_ready()
        yield server
    finally:
        server.kill()
