"""Processes: start and stop the servers under test, and read their CPU time and memory.

Everything here reads /proc (Linux). A server is started in a session of its own, so that it
and every worker it spawns form one process group, stopped together by that group's id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 and on of /proc/<pid>/stat (the command name, which may hold spaces, cut off)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far (its own, not its children's)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """The root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    snapshot = {}
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is not None:
            snapshot[pid] = seconds
    return snapshot


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds spent between two snapshots; a process born in between counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to ``database`` (by their title)."""
    backends = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            title = cmdline(int(entry))
            if title.startswith("postgres: ") and f" {database} " in title:
                backends.append(int(entry))
    return backends


class MemorySampler:
    """Samples the resident memory of a process tree every ``interval`` seconds, in a thread,
    and keeps each process's peak. Use as a context manager around one measurement."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in process_tree(self.root):
            rss = rss_kib(pid)
            if rss is not None:
                self.peaks[pid] = max(rss, self.peaks.get(pid, 0))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A uvicorn master (and its workers) under test."""

    name: str
    workers: int
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def role(self, pid: int) -> str:
        """The supervisor of several workers is the master; a process that serves, a worker;
        anything else in the tree (multiprocessing's resource tracker), a helper."""
        if pid == self.pid:
            return "master" if self.workers > 1 else "worker"
        return "worker" if "spawn_main" in cmdline(pid) else "helper"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def start_server(
    name: str, app: str, workers: int, env: Mapping[str, str], cwd: Path, log_dir: Path
) -> Server:
    """``uvicorn APP --workers N`` on a free loopback port, with exactly the environment ``env``;
    returns once every worker answers."""
    port = free_port()
    log_path = log_dir / f"{name}-{workers}w-{port}.log"
    command = [
        str(cwd / ".venv" / "bin" / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own venv's uvicorn, fixed arguments
            command,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, workers, port, process, log_path)
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: Server) -> None:
    """Until /healthz answers and, with several workers, every worker has started serving."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        tree = process_tree(server.pid)
        enough = len(tree) >= server.workers + (1 if server.workers > 1 else 0)
        try:
            answered = httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            answered = False
        if answered and enough:
            # Workers bind the shared socket one by one: give the last one a moment.
            time.sleep(1.0 if server.workers > 1 else 0.2)
            server.pids = process_tree(server.pid)
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"{server.name} not ready in {READY_TIMEOUT_SECONDS} s:\n{server.log_tail()}"
    )


def stop_server(server: Server) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not ended in time."""
    if server.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    # Workers that outlived their master are still in the group: wait for them, then kill.
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _group_alive(server.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running(
    name: str, app: str, workers: int, env: Mapping[str, str], cwd: Path, log_dir: Path
) -> Iterator[Server]:
    server = start_server(name, app, workers, env, cwd, log_dir)
    try:
        yield server
    finally:
        stop_server(server)
