from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, computed_field
from pydantic.config import JsonDict

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.text import StorableStr

Scale = Annotated[int, Field(strict=True, ge=0, le=10, description="0-10.")]
SleepHours = Annotated[float, Field(strict=True, ge=0, le=24, description="Hours slept, 0-24.")]
Note = Annotated[StorableStr, Field(max_length=2000, description="Up to 2,000 characters.")]


CHECKIN_EXAMPLE: JsonDict = {
    "id": "3e6f4ecb-2e3a-4010-a603-ae8aa65360fe",
    "private": False,
    "version": 1,
    "created_at": "2026-11-21T07:31:02.118Z",
    "updated_at": "2026-11-21T07:31:02.118Z",
    "clock_adjusted": False,
    "recorded_at": "2026-11-21T07:30:00Z",
    "backfilled": False,
    "mood": 6,
    "anxiety": 3,
    "energy": 5,
    "sleep_hours": 7.5,
    "note": "Slept well; a quiet morning.",
    "received_at": "2026-11-21T07:31:02.118Z",
}


class CheckinCreate(EntryCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recorded_at": "2026-11-21T08:30:00+01:00",
                    "mood": 6,
                    "anxiety": 3,
                    "energy": 5,
                    "sleep_hours": 7.5,
                    "note": "Slept well; a quiet morning.",
                }
            ]
        }
    )

    recorded_at: EntryTime | None = Field(
        default=None,
        description="When it was felt; default now. More than 24 hours before the server receives "
        "it marks the check-in `backfilled`.",
    )
    mood: Scale
    anxiety: Scale | None = None
    energy: Scale | None = None
    sleep_hours: SleepHours | None = None
    note: Note | None = None


class CheckinUpdate(EntryUpdate):
    model_config = ConfigDict(json_schema_extra={"examples": [{"mood": 7, "note": None}]})

    not_null = frozenset({"private", "recorded_at", "mood"})

    recorded_at: EntryTime | None = None
    mood: Scale | None = None
    anxiety: Scale | None = None
    energy: Scale | None = None
    sleep_hours: SleepHours | None = None
    note: Note | None = None


class CheckinRead(EntryRead):
    model_config = ConfigDict(json_schema_extra={"examples": [CHECKIN_EXAMPLE]})

    recorded_at: datetime
    backfilled: bool = Field(description="Recorded more than 24 hours before it was received.")
    mood: int
    anxiety: int | None
    energy: int | None
    sleep_hours: float | None
    note: str | None

    @computed_field(description="When the server received it.")  # type: ignore[prop-decorator]
    @property
    def received_at(self) -> datetime:
        return self.created_at
