from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, computed_field

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.text import StorableStr

Scale = Annotated[int, Field(strict=True, ge=0, le=10, description="0-10.")]
SleepHours = Annotated[float, Field(strict=True, ge=0, le=24, description="Hours slept, 0-24.")]
Note = Annotated[StorableStr, Field(max_length=2000, description="Up to 2,000 characters.")]


class CheckinCreate(EntryCreate):
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
    not_null = frozenset({"private", "recorded_at", "mood"})

    recorded_at: EntryTime | None = None
    mood: Scale | None = None
    anxiety: Scale | None = None
    energy: Scale | None = None
    sleep_hours: SleepHours | None = None
    note: Note | None = None


class CheckinRead(EntryRead):
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
