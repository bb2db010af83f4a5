"""For the tests that run a request's one statement (PostgreSQL's) and its separate steps
(SQLite's) side by side: the app on an event loop of the test's own (hypothesis drives plain
functions), and the page requests both forms of a list read."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from api.app import create_app
from api.journal.repository import PageRequest
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client


@dataclass(frozen=True)
class OwnLoop:
    loop: asyncio.AbstractEventLoop
    app: Any
    client: httpx.AsyncClient


@contextlib.contextmanager
def app_on_own_loop(settings: Settings, tmp_path: Path) -> Iterator[OwnLoop]:
    """A started app and a conforming client to it, on a new event loop, closed on leaving."""
    loop = asyncio.new_event_loop()
    app = create_app(make_settings(tmp_path, settings.database_url))
    stack = contextlib.AsyncExitStack()
    try:
        loop.run_until_complete(stack.enter_async_context(app.router.lifespan_context(app)))
        client = loop.run_until_complete(stack.enter_async_context(conforming_client(app)))
        yield OwnLoop(loop, app, client)
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# Hours after a list test's first entry, for `since`, `until` and a cursor's time (a cursor's id
# at either end of the range breaks a tie at that instant both ways).
hours = st.none() | st.integers(-1, 10)
afters = st.none() | st.tuples(st.integers(-1, 10), st.sampled_from(["low", "high"]))


def page_request(
    start: datetime,
    limit: int,
    since: int | None,
    until: int | None,
    after: tuple[int, str] | None,
    session_id: uuid.UUID | None = None,
) -> PageRequest:
    """A page request with its times in hours after ``start``."""

    def at(offset: int | None) -> datetime | None:
        return None if offset is None else start + timedelta(hours=offset)

    cursor = None
    if after is not None:
        hours_after, tie = after
        cursor = (
            start + timedelta(hours=hours_after),
            uuid.UUID(int=0 if tie == "low" else 2**128 - 1),
        )
    return PageRequest(
        limit=limit, since=at(since), until=at(until), session_id=session_id, after=cursor
    )
