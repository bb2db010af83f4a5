"""The arithmetic behind a patient's summary: mood series, score trends, dosing windows, flags.

Everything here works on real instants: datetimes are converted to UTC before any comparison or
arithmetic, because Python compares and subtracts two datetimes that share a tzinfo by wall
clock, which is wrong by an hour across a daylight-saving change.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from api.assessments.scoring import Instrument, in_remission, meets_response

MOOD_MIN = 0
MOOD_MAX = 10

BEFORE_DOSING = timedelta(hours=72)
AFTER_DOSING_SHORT = timedelta(hours=24)
AFTER_DOSING_MEDIUM = timedelta(hours=72)
AFTER_DOSING_LONG = timedelta(days=7)

DEFAULT_SAFETY_FLAG_DAYS = 14


def _require_aware(at: datetime) -> None:
    # A naive datetime would silently be read as server-local time.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime {at.isoformat()} must be timezone-aware")


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


@dataclass(frozen=True)
class MoodPoint:
    at: datetime
    mood: int

    def __post_init__(self) -> None:
        _require_aware(self.at)
        if not MOOD_MIN <= self.mood <= MOOD_MAX:
            raise ValueError(f"mood must be from {MOOD_MIN} to {MOOD_MAX}, got {self.mood}")


@dataclass(frozen=True)
class AssessmentPoint:
    at: datetime
    instrument: Instrument
    total: int
    safety_flag: bool
    id: UUID

    def __post_init__(self) -> None:
        _require_aware(self.at)


@dataclass(frozen=True)
class DosingPoint:
    id: UUID
    at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.at)


@dataclass(frozen=True)
class DailyMood:
    day: date
    mean: float | None
    count: int


@dataclass(frozen=True)
class InstrumentTrend:
    instrument: Instrument
    baseline_total: int
    baseline_at: datetime
    latest_total: int
    latest_at: datetime
    change: int
    response: bool
    remission: bool | None
    count: int


@dataclass(frozen=True)
class DosingMood:
    session_id: UUID
    at: datetime
    before_72h: float | None
    after_24h: float | None
    after_72h: float | None
    after_7d: float | None


def _mean(moods: Sequence[int]) -> float | None:
    """Mean to 2 decimals, halves rounded up, or None for no values.

    Decimal on the exact mean, so 1/8 shows as 0.13 the way a person would round it, rather
    than float round()'s half-to-even on a binary approximation.
    """
    if not moods:
        return None
    exact = Decimal(sum(moods)) / Decimal(len(moods))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def daily_mood(
    points: Iterable[MoodPoint], *, start: date, end: date, tz: tzinfo
) -> list[DailyMood]:
    """One entry per calendar day in `tz` from `start` to `end` inclusive."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for point in points:
        by_day[point.at.astimezone(tz).date()].append(point.mood)
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return [DailyMood(day=day, mean=_mean(by_day[day]), count=len(by_day[day])) for day in days]


def instrument_trends(
    assessments: Iterable[AssessmentPoint], dosing: Iterable[DosingPoint]
) -> list[InstrumentTrend]:
    """Change from baseline per instrument, in Instrument order, for instruments with data.

    Baseline is the last assessment strictly before the first dosing session when there is one,
    otherwise the first assessment of that instrument.
    """
    first_dosing = min((_utc(session.at) for session in dosing), default=None)
    by_instrument: dict[Instrument, list[AssessmentPoint]] = defaultdict(list)
    for assessment in assessments:
        by_instrument[assessment.instrument].append(assessment)
    return [
        _trend(instrument, by_instrument[instrument], first_dosing)
        for instrument in Instrument
        if by_instrument[instrument]
    ]


def _chronological(assessment: AssessmentPoint) -> tuple[datetime, UUID]:
    # The id breaks ties so that equal timestamps give the same answer whatever the input order.
    return (_utc(assessment.at), assessment.id)


def _trend(
    instrument: Instrument, assessments: list[AssessmentPoint], first_dosing: datetime | None
) -> InstrumentTrend:
    ordered = sorted(assessments, key=_chronological)
    before_dosing = (
        [] if first_dosing is None else [a for a in ordered if _utc(a.at) < first_dosing]
    )
    baseline = before_dosing[-1] if before_dosing else ordered[0]
    latest = ordered[-1]
    return InstrumentTrend(
        instrument=instrument,
        baseline_total=baseline.total,
        baseline_at=baseline.at,
        latest_total=latest.total,
        latest_at=latest.at,
        change=latest.total - baseline.total,
        response=meets_response(baseline.total, latest.total),
        remission=in_remission(instrument, latest.total),
        count=len(ordered),
    )


def mood_around_dosing(
    points: Iterable[MoodPoint], dosing: Iterable[DosingPoint]
) -> list[DosingMood]:
    """Mean mood before and after each dosing session, ordered by dosing time.

    The before window is [at - 72h, at): it includes its start and excludes the session itself.
    The after windows are (at, at + 24h], (at, at + 72h] and (at, at + 7d]: they exclude the
    session instant and include their end. A check-in at the exact session time is in none.
    """
    moods = [(_utc(point.at), point.mood) for point in points]
    sessions = sorted(dosing, key=lambda session: (_utc(session.at), session.id))
    return [_dosing_mood(session, moods) for session in sessions]


def _dosing_mood(session: DosingPoint, moods: list[tuple[datetime, int]]) -> DosingMood:
    at = _utc(session.at)

    def after(window: timedelta) -> float | None:
        return _mean([mood for when, mood in moods if at < when <= at + window])

    return DosingMood(
        session_id=session.id,
        at=session.at,
        before_72h=_mean([mood for when, mood in moods if at - BEFORE_DOSING <= when < at]),
        after_24h=after(AFTER_DOSING_SHORT),
        after_72h=after(AFTER_DOSING_MEDIUM),
        after_7d=after(AFTER_DOSING_LONG),
    )


def recent_safety_flags(
    assessments: Iterable[AssessmentPoint],
    *,
    now: datetime,
    days: int = DEFAULT_SAFETY_FLAG_DAYS,
) -> list[AssessmentPoint]:
    """Flagged assessments taken after `now - days` (exclusive), newest first."""
    _require_aware(now)
    since = _utc(now) - timedelta(days=days)
    flagged = [a for a in assessments if a.safety_flag and _utc(a.at) > since]
    return sorted(flagged, key=_chronological, reverse=True)
