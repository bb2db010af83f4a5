from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.models import Route, Setting
from api.text import StorableStr

DoseMg = Annotated[
    float, Field(strict=True, gt=0, le=1000, description="Dose in mg, if known (0 < dose <= 1000).")
]
Notes = Annotated[
    StorableStr, Field(max_length=5000, description="Free text, up to 5,000 characters.")
]


class DosingSessionCreate(EntryCreate):
    started_at: EntryTime
    route: Route
    dose_mg: DoseMg | None = None
    setting: Setting
    notes: Notes | None = None


class DosingSessionUpdate(EntryUpdate):
    not_null = frozenset({"private", "started_at", "route", "setting"})

    started_at: EntryTime | None = None
    route: Route | None = None
    dose_mg: DoseMg | None = None
    setting: Setting | None = None
    notes: Notes | None = None


class DosingSessionRead(EntryRead):
    started_at: datetime
    route: Route
    dose_mg: float | None
    setting: Setting
    notes: str | None
