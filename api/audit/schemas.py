from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.models import AuditOutcome


class AccessLogEntry(BaseModel):
    at: datetime
    therapist_id: uuid.UUID
    therapist_name: str | None = Field(description="Null when that account no longer exists.")
    therapist_email: str | None
    grant_id: uuid.UUID | None
    resource: str = Field(
        description="`sessions`, `intentions`, `reflections`, `checkins`, `assessments` or `summary`."
    )
    action: str = Field(description="`list`, `read` or `summary`.")
    entry_ids: list[uuid.UUID] = Field(description="The entries shown.")
    count: int
    outcome: AuditOutcome = Field(description="`allowed`, or why it was refused.")
    description: str = Field(description="The same, in a sentence.")
    request_id: str


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_cursor: str | None
