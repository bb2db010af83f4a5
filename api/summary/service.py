"""Gathers the few columns the summary needs, within a scope, and hands them to the pure maths."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.assessments.schemas import CrisisResource
from api.journal.repository import EntryRepository, Scope
from api.journal.schemas import FUTURE_TOLERANCE
from api.models import Account, Assessment, Checkin, DosingSession
from api.safety_flags import service as safety_flags
from api.settings import Settings
from api.summary import calculations as calc
from api.summary.schemas import (
    DailyMoodOut,
    DosingMoodOut,
    InstrumentTrendOut,
    MoodWindowOut,
    Summary,
)

# The columns of a questionnaire the calculations need, and the point made from them.
ASSESSMENT_POINT = (
    Assessment.id,
    Assessment.completed_at,
    Assessment.instrument,
    Assessment.total,
    Assessment.safety_flag,
    Assessment.created_at,
)


def assessment_point(row: Any) -> calc.AssessmentPoint:
    return calc.AssessmentPoint(
        at=row.completed_at,
        instrument=row.instrument,
        total=row.total,
        safety_flag=row.safety_flag,
        id=row.id,
        received_at=row.created_at,
    )


async def time_zone_of(session: AsyncSession, account_id: uuid.UUID) -> str:
    """The account's IANA time zone: the patient's days are counted in it."""
    found = await session.scalar(select(Account.time_zone).where(Account.id == account_id))
    return found or "UTC"


async def build_summary(
    session: AsyncSession,
    scope: Scope,
    settings: Settings,
    *,
    days: int,
    tz: tzinfo,
    tz_name: str,
    now: datetime,
) -> Summary:
    today = now.astimezone(tz).date()
    start_day = today - timedelta(days=days - 1)
    window_start = datetime.combine(start_day, datetime.min.time(), tz)

    dosing = [
        calc.DosingPoint(id=row.id, at=row.started_at, ended_at=row.ended_at)
        for row in await EntryRepository(session, DosingSession, scope).rows(
            DosingSession.id, DosingSession.started_at, DosingSession.ended_at
        )
    ]
    # Only the check-ins the figures need: the window, and the days around each dosing session.
    # Up to the same few minutes ahead a check-in may be stamped with, so none is left out.
    window_end = now + FUTURE_TOLERANCE
    ranges = [and_(Checkin.recorded_at >= window_start, Checkin.recorded_at <= window_end)] + [
        and_(
            Checkin.recorded_at >= point.at - calc.BEFORE_DOSING,
            Checkin.recorded_at <= point.at + calc.DURABILITY_HORIZON,
        )
        for point in dosing
    ]
    moods = [
        calc.MoodPoint(at=row.recorded_at, mood=row.mood, backfilled=row.backfilled)
        for row in await EntryRepository(session, Checkin, scope).rows(
            Checkin.recorded_at, Checkin.backfilled, Checkin.mood, where=(or_(*ranges),)
        )
    ]
    assessments = [
        assessment_point(row)
        for row in await EntryRepository(session, Assessment, scope).rows(*ASSESSMENT_POINT)
    ]

    flags = [
        flag
        for flag in await safety_flags.flags(session, scope, now=now)
        if calc.flag_shown_in_summary(flag.acknowledged_at, now=now)
    ]
    return Summary(
        days=days,
        tz=tz_name,
        mood=[
            DailyMoodOut(**dataclasses.asdict(d))
            for d in calc.daily_mood(moods, start=start_day, end=today, tz=tz)
        ],
        instruments=[
            InstrumentTrendOut.model_validate(dataclasses.asdict(t))
            for t in calc.instrument_trends(assessments, dosing)
        ],
        dosing_sessions=[
            DosingMoodOut(
                session_id=m.session_id,
                started_at=m.at,
                before_72h=m.before_72h,
                after_24h=m.after_24h,
                after_72h=m.after_72h,
                after_7d=m.after_7d,
                acute_end=course.acute_end,
                acute_end_assumed=course.acute_end_assumed,
                windows=[
                    MoodWindowOut(**dataclasses.asdict(w))
                    for w in (course.before, course.during, *course.after)
                ],
                durability_days=course.durability_days,
                durability_withheld=course.durability_withheld,
            )
            for m, course in zip(
                calc.mood_around_dosing(moods, dosing),
                calc.mood_on_the_time_course(moods, dosing, tz=tz),
                strict=True,
            )
        ],
        safety_flags=flags,
        crisis_resources=[CrisisResource.model_validate(r) for r in settings.crisis_resources]
        if flags
        else [],
        shared_only=not scope.include_private,
    )
