from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.models import IntentionStatus
from api.text import StorableStr

IntentionText = Annotated[
    StorableStr, Field(min_length=1, max_length=2000, description="Up to 2,000 characters.")
]
SessionRef = Annotated[uuid.UUID, Field(description="One of your dosing sessions.")]


INTENTION_EXAMPLE: JsonDict = {
    "id": "3a922d48-d0bb-444d-85c1-33a2d269af5b",
    "private": False,
    "version": 1,
    "created_at": "2026-11-19T20:14:03.511Z",
    "updated_at": "2026-11-19T20:14:03.511Z",
    "clock_adjusted": False,
    "text": "Be gentler with myself",
    "session_id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
    "status": "active",
    "set_at": "2026-11-19T20:14:03.497Z",
}


class IntentionCreate(EntryCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "Be gentler with myself",
                    "session_id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
                }
            ]
        }
    )

    text: IntentionText
    session_id: SessionRef | None = None
    status: IntentionStatus = IntentionStatus.ACTIVE
    set_at: EntryTime | None = Field(default=None, description="When it was set; default now.")


class IntentionUpdate(EntryUpdate):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "revisited"}]})

    not_null = frozenset({"private", "text", "status", "set_at"})

    text: IntentionText | None = None
    session_id: SessionRef | None = None
    status: IntentionStatus | None = None
    set_at: EntryTime | None = None


class IntentionRead(EntryRead):
    model_config = ConfigDict(json_schema_extra={"examples": [INTENTION_EXAMPLE]})

    text: str
    session_id: uuid.UUID | None
    status: IntentionStatus
    set_at: datetime
