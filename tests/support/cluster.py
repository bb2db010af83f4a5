"""A throwaway PostgreSQL cluster of a test's own: the one kind of database a test may stop.

The shared server (TEST_DATABASE_URL) is never stopped. A test that takes a database away
starts its own cluster with the machine's PostgreSQL binaries, on a free loopback port, with
trust authentication, and removes it afterwards (``pg_ctl stop -m immediate``, then the folder),
also when the test fails.

initdb refuses to run as root. When the suite runs as root, every server binary runs as the
``postgres`` OS user through ``runuser``, in a folder directly under the temporary directory
that this user owns (pytest's own temporary folders are root's, mode 0700, and closed to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Bounds on each step, never expectations: initdb takes about a second, a start a fraction.
INITDB_SECONDS = 120.0
PG_CTL_SECONDS = 60
MIGRATE_SECONDS = 120.0


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick; released for the caller)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def server_bin_dir() -> Path:
    """Where initdb and pg_ctl live: TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin,
    else the PATH."""
    candidates: list[Path] = []
    if os.environ.get("TEST_PG_BIN"):
        candidates.append(Path(os.environ["TEST_PG_BIN"]))
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the server package "
        "or point TEST_PG_BIN at their folder"
    )


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str], timeout: float) -> None:
    done = subprocess.run(
        _as_owner(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(argv[0]).name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


@dataclass
class Cluster:
    """One PostgreSQL cluster on 127.0.0.1:``port``, superuser ``postgres``, trust auth."""

    bin_dir: Path
    home: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        _run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",  # a throwaway cluster: nothing to keep across a machine crash
            ],
            INITDB_SECONDS,
        )

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.home}"
        )
        _run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(PG_CTL_SECONDS),
                "start",
            ],
            PG_CTL_SECONDS + 10,
        )

    def stop(self, mode: str = "fast") -> None:
        _run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                str(PG_CTL_SECONDS),
                "stop",
            ],
            PG_CTL_SECONDS + 10,
        )

    def is_running(self) -> bool:
        done = subprocess.run(
            _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            timeout=PG_CTL_SECONDS,
            check=False,
        )
        return done.returncode == 0

    def processes(self) -> list[int]:
        """The postmaster and every process it started (each backend is its own session)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP the whole cluster: connections are accepted by the kernel, never answered."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A fresh, started cluster; stopped (immediate) and deleted on leaving, whatever happened."""
    home = Path(tempfile.mkdtemp(prefix="journal-pg-"))
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(home, owner.pw_uid, owner.pw_gid)
        home.chmod(0o700)
        cluster = Cluster(bin_dir=server_bin_dir(), home=home)
        cluster.initdb()
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.is_running():
                cluster.thaw()  # a frozen postmaster would not hear pg_ctl's signal
                cluster.stop("immediate")
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def create_database(cluster: Cluster, name: str, template: str | None = None) -> str:
    """Create database ``name`` on the cluster (a copy of ``template``, if given: a migrated
    database copied in milliseconds) and return its SQLAlchemy URL."""
    connection = await asyncpg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", database="postgres"
    )
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()
    return cluster.url(name)


def migrate_with_alembic(database_url: str) -> None:
    """``alembic upgrade head`` as an operator runs it: the project's own command, in the repo."""
    env = {**clean_environment(), "DATABASE_URL": database_url}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed:\n{done.stdout}\n{done.stderr}")


async def migrated_database(cluster: Cluster, name: str) -> str:
    url = await create_database(cluster, name)
    await asyncio.to_thread(migrate_with_alembic, url)
    return url


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that configures the service."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JOURNAL_")
        and key not in {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL"}
    }
