from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.journal.schemas import ResourceName
from api.models import AuditOutcome

# What a therapist's request was about: a kind of entry, the summary, the safety flags, the
# journal as a whole (`grant`: opened with a read token, or refused at the grant) or the patient
# list. And what was done with it.
AuditResource = Literal[ResourceName, "summary", "safety_flags", "grant", "patients"]
AuditAction = Literal["list", "read", "summary", "acknowledge", "open"]

ACCESS_LOG_EXAMPLE: JsonDict = {
    "at": "2026-11-21T09:20:03.016Z",
    "therapist_id": "bfec041f-0409-4789-8fa1-d993734fb716",
    "therapist_name": "Dr. Lee",
    "therapist_email": "dr.lee@example.org",
    "therapist_verified": True,
    "therapist_clinic": "Harbor Integration Clinic",
    "grant_id": "04100423-b6a0-410e-9b72-b7394471b0cb",
    "resource": "checkins",
    "action": "list",
    "entry_ids": ["3e6f4ecb-2e3a-4010-a603-ae8aa65360fe"],
    "count": 1,
    "outcome": "allowed",
    "description": "Dr. Lee viewed 1 of your mood check-ins.",
    "request_id": "8b7b0597cc474a50874717918a3e984a",
}


class AccessLogEntry(BaseModel):
    at: datetime
    therapist_id: uuid.UUID
    therapist_name: str | None = Field(description="Null when that account no longer exists.")
    therapist_email: str | None
    therapist_verified: bool | None = Field(
        description="Invited or verified by the operator; null when that account no longer exists."
    )
    therapist_clinic: str | None
    grant_id: uuid.UUID | None
    resource: AuditResource = Field(
        description="A kind of entry, `summary`, `safety_flags`, `grant` (the journal as a whole: "
        "opened with a read token, or a web page refused at the grant before anything was read) "
        "or `patients` (you were shown in the therapist's list of patients)."
    )
    action: AuditAction = Field(
        description="`list`, `read`, `summary`, `open` (the journal, with a read token), or "
        "`acknowledge` (a safety flag, in `entry_ids`)."
    )
    entry_ids: list[uuid.UUID] = Field(description="The entries shown.")
    count: int
    outcome: AuditOutcome = Field(description="`allowed`, or why it was refused.")
    description: str = Field(description="The same, in a sentence.")
    request_id: str


class AccessLogPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [ACCESS_LOG_EXAMPLE], "next_cursor": None}]}
    )

    items: list[AccessLogEntry]
    next_cursor: str | None
