from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.assessments.schemas import CrisisResource
from api.assessments.scoring import Instrument
from api.safety_flags.schemas import SafetyFlagRead
from api.summary.calculations import BaselineBasis, MeaningfulChange


class DailyMoodOut(BaseModel):
    day: date
    mean: float | None = Field(
        description="Mean mood that day, 2 decimals; null without check-ins."
    )
    count: int


class ScorePointOut(BaseModel):
    assessment_id: uuid.UUID
    total: int
    completed_at: datetime
    backfilled: bool = Field(description="Completed more than 24 hours before it was received.")
    days_since_dosing: int | None = Field(
        description="Whole days since the dosing session before it; null when none came before."
    )


class InstrumentTrendOut(BaseModel):
    instrument: Instrument
    baseline_total: int = Field(
        description="The last score before the first dosing session, or else the first score "
        "(see baseline_basis)."
    )
    baseline_at: datetime
    baseline_basis: BaselineBasis = Field(
        description="`before_first_session`: the last score completed before the first dosing "
        "session. `first_available`: there is none (or no dosing session), so the first score."
    )
    latest_total: int
    latest_at: datetime
    change: int = Field(description="latest - baseline (negative is better).")
    meaningful_change: MeaningfulChange = Field(
        description="Whether the change reaches the instrument's clinically meaningful "
        "difference (meaningful_change_points): `improved`, `worsened` or `no_meaningful_change`."
    )
    meaningful_change_points: int = Field(
        description="The instrument's meaningful difference: PHQ-9 5, GAD-7 4, PCL-5 10 points."
    )
    response: bool | None = Field(
        description="PHQ-9 and GAD-7: latest at most half the baseline. Null when it cannot be "
        "judged (response_withheld says why): always for PCL-5; without a dosing session or a "
        "score after the first one; with a baseline below 10."
    )
    response_withheld: str | None = Field(
        default=None, description="Why response is null, in words; null when it is given."
    )
    remission: bool | None = Field(
        description="PHQ-9 or GAD-7 latest < 5, under the same conditions as response; null "
        "otherwise (remission_withheld says why), and always for PCL-5."
    )
    remission_withheld: str | None = Field(
        default=None, description="Why remission is null, in words; null when it is given."
    )
    count: int
    series: list[ScorePointOut] = Field(
        default=[], description="Every score of this instrument, oldest first."
    )


# The windows of api.summary.calculations, in order (tests/unit/test_closed_sets.py checks it).
WindowName = Literal["before", "during", "day_0_1", "days_1_3", "days_3_7", "days_7_14"]


class MoodWindowOut(BaseModel):
    name: WindowName = Field(
        description="`before` (72 h before the start), `during` (the acute phase), then "
        "`day_0_1` (end of the acute phase to 24 h after the start), `days_1_3`, `days_3_7`, "
        "`days_7_14` (after the start)."
    )
    start: datetime = Field(description="Inclusive.")
    end: datetime = Field(description="Exclusive; earlier than planned when cut_short.")
    mean: float | None = Field(
        description="Mean of the patient's local days' mean moods (each day weighs the same, "
        "however many check-ins it has), 2 decimals; null without check-ins."
    )
    days: int = Field(description="Local days with check-ins counted.")
    checkins: int
    backfilled: int = Field(description="Of those check-ins, how many were backfilled.")
    cut_short: bool = Field(description="The next dosing session started before its planned end.")


DEPRECATED_WINDOW = (
    "Deprecated: nested windows that count the acute phase and overlap (kept for v1 clients); "
    "use `windows`."
)


class DosingMoodOut(BaseModel):
    session_id: uuid.UUID
    started_at: datetime
    before_72h: float | None = Field(description="Mean mood in the 72 hours before.")
    after_24h: float | None = Field(
        description=DEPRECATED_WINDOW, json_schema_extra={"deprecated": True}
    )
    after_72h: float | None = Field(
        description=DEPRECATED_WINDOW, json_schema_extra={"deprecated": True}
    )
    after_7d: float | None = Field(
        description=DEPRECATED_WINDOW, json_schema_extra={"deprecated": True}
    )
    acute_end: datetime | None = Field(
        default=None,
        description="The end of the acute phase: the session's ended_at, or started_at + 2 h "
        "(acute_end_assumed).",
    )
    acute_end_assumed: bool = False
    windows: list[MoodWindowOut] = Field(
        default=[],
        description="Disjoint windows on the drug's time course: before, during (never counted "
        "as effect), then day 0-1, days 1-3, 3-7 and 7-14.",
    )
    durability_days: int | None = Field(
        default=None,
        description="Days from the session's day to the first day whose mean mood is back at or "
        "below the before-mean, within 14 days; null when it did not, or with too little data "
        "(durability_withheld says which).",
    )
    durability_withheld: str | None = None


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
                            "baseline_basis": "before_first_session",
                            "latest_total": 7,
                            "latest_at": "2026-11-21T07:40:00Z",
                            "change": -7,
                            "meaningful_change": "improved",
                            "meaningful_change_points": 5,
                            "response": True,
                            "response_withheld": None,
                            "remission": False,
                            "remission_withheld": None,
                            "count": 2,
                            "series": [
                                {
                                    "assessment_id": "3f2a1c9e-8b7d-4e6f-a5b4-c3d2e1f0a9b8",
                                    "total": 14,
                                    "completed_at": "2026-11-02T08:10:00Z",
                                    "backfilled": False,
                                    "days_since_dosing": None,
                                },
                                {
                                    "assessment_id": "fa06f3e4-ed14-4d86-9358-8d399a8ee6d7",
                                    "total": 7,
                                    "completed_at": "2026-11-21T07:40:00Z",
                                    "backfilled": False,
                                    "days_since_dosing": 0,
                                },
                            ],
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
                            "acute_end": "2026-11-20T11:00:00Z",
                            "acute_end_assumed": True,
                            "windows": [],
                            "durability_days": None,
                            "durability_withheld": "No check-ins after the session within 14 days.",
                        }
                    ],
                    "safety_flags": [],
                    "crisis_resources": [],
                    "shared_only": False,
                }
            ]
        }
    )

    days: int
    tz: str = Field(
        description="The IANA time zone days are counted in: `tz` when given, else the "
        "patient's account time zone."
    )
    mood: list[DailyMoodOut]
    instruments: list[InstrumentTrendOut]
    dosing_sessions: list[DosingMoodOut]
    safety_flags: list[SafetyFlagRead] = Field(
        description="Every open safety flag (PHQ-9 item 9 above 0, whatever its date: a flag "
        "stays open until a therapist acknowledges it), and those acknowledged in the last 30 "
        "days, newest received first."
    )
    crisis_resources: list[CrisisResource] = Field(
        description="Present when there are safety flags."
    )
    shared_only: bool = Field(
        default=False,
        description="True in a therapist's view: computed from shared entries only (private "
        "entries and sessions left out), so it may differ from the patient's own.",
    )
