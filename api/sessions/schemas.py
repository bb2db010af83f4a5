from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.models import Route, Setting
from api.text import StorableStr

DoseMg = Annotated[
    float, Field(strict=True, gt=0, le=1000, description="Dose in mg, if known (0 < dose <= 1000).")
]
Notes = Annotated[
    StorableStr, Field(max_length=5000, description="Free text, up to 5,000 characters.")
]


ENDED_AT = (
    "When the acute effects were over (after started_at). Mood in between is reported as "
    "`during`, never as effect; without it the summary takes started_at + 2 hours."
)

SESSION_EXAMPLE: JsonDict = {
    "id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
    "private": False,
    "version": 1,
    "created_at": "2026-11-20T09:05:12.204Z",
    "updated_at": "2026-11-20T09:05:12.204Z",
    "clock_adjusted": False,
    "started_at": "2026-11-20T09:00:00Z",
    "ended_at": "2026-11-20T10:30:00Z",
    "route": "sublingual",
    "dose_mg": 100.0,
    "setting": "home",
    "notes": "Music, eyeshade, my partner nearby.",
}


class DosingSessionCreate(EntryCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "started_at": "2026-11-20T10:00:00+01:00",
                    "route": "sublingual",
                    "dose_mg": 100,
                    "setting": "home",
                    "notes": "Music, eyeshade, my partner nearby.",
                }
            ]
        }
    )

    started_at: EntryTime
    ended_at: EntryTime | None = Field(default=None, description=ENDED_AT)
    route: Route
    dose_mg: DoseMg | None = None
    setting: Setting
    notes: Notes | None = None

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.ended_at is not None and self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        return self


class DosingSessionUpdate(EntryUpdate):
    model_config = ConfigDict(json_schema_extra={"examples": [{"dose_mg": 120, "notes": None}]})

    not_null = frozenset({"private", "started_at", "route", "setting"})

    started_at: EntryTime | None = None
    ended_at: EntryTime | None = Field(default=None, description=ENDED_AT)
    route: Route | None = None
    dose_mg: DoseMg | None = None
    setting: Setting | None = None
    notes: Notes | None = None


class DosingSessionRead(EntryRead):
    model_config = ConfigDict(json_schema_extra={"examples": [SESSION_EXAMPLE]})

    started_at: datetime
    ended_at: datetime | None = Field(default=None, description=ENDED_AT)
    route: Route
    dose_mg: float | None
    setting: Setting
    notes: str | None
