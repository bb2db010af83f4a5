from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from api.assessments.schemas import CrisisResource
from api.assessments.scoring import Instrument


class DailyMoodOut(BaseModel):
    day: date
    mean: float | None = Field(
        description="Mean mood that day, 2 decimals; null without check-ins."
    )
    count: int


class InstrumentTrendOut(BaseModel):
    instrument: Instrument
    baseline_total: int = Field(
        description="The last score before the first dosing session, or else the first score."
    )
    baseline_at: datetime
    latest_total: int
    latest_at: datetime
    change: int = Field(description="latest - baseline (negative is better).")
    response: bool = Field(description="A drop of at least 50% from baseline.")
    remission: bool | None = Field(description="PHQ-9 or GAD-7 latest < 5; null for PCL-5.")
    count: int


class DosingMoodOut(BaseModel):
    session_id: uuid.UUID
    started_at: datetime
    before_72h: float | None = Field(description="Mean mood in the 72 hours before.")
    after_24h: float | None
    after_72h: float | None
    after_7d: float | None


class SafetyFlagOut(BaseModel):
    assessment_id: uuid.UUID
    instrument: Instrument
    total: int
    completed_at: datetime


class Summary(BaseModel):
    days: int
    tz: str
    mood: list[DailyMoodOut]
    instruments: list[InstrumentTrendOut]
    dosing_sessions: list[DosingMoodOut]
    safety_flags: list[SafetyFlagOut] = Field(
        description="PHQ-9 item 9 above 0 in the last 14 days."
    )
    crisis_resources: list[CrisisResource] = Field(
        description="Present when there are safety flags."
    )
