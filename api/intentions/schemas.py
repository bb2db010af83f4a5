from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.models import IntentionStatus
from api.text import StorableStr

IntentionText = Annotated[
    StorableStr, Field(min_length=1, max_length=2000, description="Up to 2,000 characters.")
]
SessionRef = Annotated[uuid.UUID, Field(description="One of your dosing sessions.")]


class IntentionCreate(EntryCreate):
    text: IntentionText
    session_id: SessionRef | None = None
    status: IntentionStatus = IntentionStatus.ACTIVE
    set_at: EntryTime | None = Field(default=None, description="When it was set; default now.")


class IntentionUpdate(EntryUpdate):
    not_null = frozenset({"private", "text", "status", "set_at"})

    text: IntentionText | None = None
    session_id: SessionRef | None = None
    status: IntentionStatus | None = None
    set_at: EntryTime | None = None


class IntentionRead(EntryRead):
    text: str
    session_id: uuid.UUID | None
    status: IntentionStatus
    set_at: datetime
