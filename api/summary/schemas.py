from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "days": 3,
                    "tz": "Europe/Berlin",
                    "mood": [
                        {"day": "2026-11-19", "mean": 4.5, "count": 2},
                        {"day": "2026-11-20", "mean": None, "count": 0},
                        {"day": "2026-11-21", "mean": 6.0, "count": 1},
                    ],
                    "instruments": [
                        {
                            "instrument": "phq9",
                            "baseline_total": 14,
                            "baseline_at": "2026-11-02T08:10:00Z",
                            "latest_total": 7,
                            "latest_at": "2026-11-21T07:40:00Z",
                            "change": -7,
                            "response": True,
                            "remission": False,
                            "count": 3,
                        }
                    ],
                    "dosing_sessions": [
                        {
                            "session_id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
                            "started_at": "2026-11-20T09:00:00Z",
                            "before_72h": 4.33,
                            "after_24h": 6.0,
                            "after_72h": 6.0,
                            "after_7d": None,
                        }
                    ],
                    "safety_flags": [],
                    "crisis_resources": [],
                }
            ]
        }
    )

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
