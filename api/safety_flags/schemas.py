from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.assessments.scoring import Instrument
from api.text import StorableStr

FLAG_EXAMPLE: JsonDict = {
    "id": "0b7f6c0e-3f0c-4d3e-9a55-2f1f6c1d9e10",
    "assessment_id": "fa06f3e4-ed14-4d86-9358-8d399a8ee6d7",
    "instrument": "phq9",
    "item_value": 1,
    "total": 14,
    "completed_at": "2026-11-01T07:40:00Z",
    "received_at": "2026-11-21T07:40:26.330Z",
    "state": "acknowledged",
    "acknowledged_at": "2026-11-21T09:02:11.120Z",
    "acknowledged_by": "bfec041f-0409-4789-8fa1-d993734fb716",
    "acknowledged_by_name": "Dr. Lee",
    "note": "Called; safety plan reviewed.",
    "latest_phq9": {
        "assessment_id": "5c1e2f4a-7d8b-4c0e-9f1a-2b3c4d5e6f70",
        "total": 9,
        "item_value": 0,
        "completed_at": "2026-11-24T08:00:00Z",
    },
    "visible_to_therapist": True,
}


class FlagState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class LatestPhq9(BaseModel):
    assessment_id: uuid.UUID
    total: int
    item_value: int = Field(description="Item 9's answer in that questionnaire, 0-3.")
    completed_at: datetime


class SafetyFlagRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [FLAG_EXAMPLE]})

    id: uuid.UUID
    assessment_id: uuid.UUID
    instrument: Instrument
    item_value: int = Field(description="PHQ-9 item 9's answer, 1-3.")
    total: int
    completed_at: datetime = Field(description="When the patient says it was answered.")
    received_at: datetime = Field(description="When the server received it: when the flag rose.")
    state: FlagState = Field(
        description="`open` until a therapist acknowledges it; it never expires, and a later "
        "PHQ-9 does not close it."
    )
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None = Field(description="The therapist's account id.")
    acknowledged_by_name: str | None = Field(
        description="The therapist's display name; null when not acknowledged or that account "
        "was deleted."
    )
    note: str | None = Field(description="The therapist's note with the acknowledgement.")
    latest_phq9: LatestPhq9 | None = Field(
        description="The newest PHQ-9 completed after this one (in the same view), shown beside "
        "the flag; null when there is none."
    )
    visible_to_therapist: bool | None = Field(
        default=None,
        description="Your own list only: whether any therapist can see this flag now (the "
        "questionnaire is not private and a live grant carries `assessments:read` or "
        "`summary:read`). Null in a therapist's view.",
    )


class SafetyFlagList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [FLAG_EXAMPLE]}]})

    items: list[SafetyFlagRead] = Field(description="Newest received first.")


class Acknowledgement(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Called; safety plan reviewed."}, {}]},
    )

    note: Annotated[StorableStr, Field(max_length=500)] | None = Field(
        default=None, description="An optional short note (up to 500 characters), stored encrypted."
    )


class FlagNotice(BaseModel):
    """What the answer to your own POST of a flagged PHQ-9 says about the flag it raised."""

    id: uuid.UUID
    state: FlagState
    visible_to_therapist: bool = Field(
        description="Whether any therapist can see this flag now: false when the questionnaire is "
        "private or no live grant carries `assessments:read` or `summary:read`."
    )
