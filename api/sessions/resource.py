from __future__ import annotations

from api.journal.resource import Resource
from api.models import DosingSession
from api.sessions.schemas import DosingSessionCreate, DosingSessionRead, DosingSessionUpdate

SESSIONS = Resource(
    name="sessions",
    singular="session",
    noun="dosing session",
    model=DosingSession,
    create=DosingSessionCreate,
    update=DosingSessionUpdate,
    read=DosingSessionRead,
)
