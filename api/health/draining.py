"""Draining: on SIGTERM a node first turns unready, keeps serving while the load balancer
notices (``JOURNAL_DRAIN_SECONDS``), and only then shuts down gracefully.

The server (uvicorn) handles SIGTERM by refusing new connections at once. Behind a load balancer
that still believes the node ready, that refusal reaches clients. So the app takes SIGTERM over
for the drain time: /readyz answers 503 from the first signal, everything else is served as
before, and when the time is up the server's own handler runs as if the signal came then. A
second SIGTERM hands over at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

logger = structlog.get_logger("api.draining")


def drain_on_sigterm(state: Any, seconds: float) -> Callable[[], None]:
    """Install the drain (when ``seconds`` > 0); returns what restores the previous handler."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        # Nothing to drain (the server's own handling as it is), or no signals here: they
        # reach the main thread only.
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def hand_over(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state.draining:
            hand_over(signum, frame)
            return
        state.draining = True
        logger.warning("draining", seconds=seconds)
        # From a signal handler, only the thread-safe call may touch the loop.
        loop.call_soon_threadsafe(loop.call_later, seconds, hand_over, signum, None)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore
