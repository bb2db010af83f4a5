from __future__ import annotations

from typing import Any

from api.errors import UnprocessableContent
from api.journal.resource import Resource, WriteContext
from api.models import DosingSession
from api.sessions.schemas import DosingSessionCreate, DosingSessionRead, DosingSessionUpdate


async def prepare(context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    """An edit may move either end: the session as it will stand must still end after it starts."""
    existing = context.existing
    if existing is not None:
        started = values.get("started_at", getattr(existing, "started_at", None))
        ended = values.get("ended_at", getattr(existing, "ended_at", None))
        if started is not None and ended is not None and ended <= started:
            raise UnprocessableContent(
                "ended_at must be after started_at.", loc=("body", "ended_at")
            )
    return values


SESSIONS = Resource(
    name="sessions",
    singular="session",
    noun="dosing session",
    nouns="dosing sessions",
    label="Dosing session",
    description="Dosing sessions: when, route, dose, setting, notes.",
    model=DosingSession,
    create=DosingSessionCreate,
    update=DosingSessionUpdate,
    read=DosingSessionRead,
    prepare=prepare,
)
