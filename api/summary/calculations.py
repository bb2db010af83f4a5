"""The arithmetic behind a patient's summary: mood series, score trends, dosing windows, flags.

Everything here works on real instants: datetimes are converted to UTC before any comparison or
arithmetic, because Python compares and subtracts two datetimes that share a tzinfo by wall
clock, which is wrong by an hour across a daylight-saving change.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from uuid import UUID

from api.assessments.scoring import Instrument, in_remission, meets_response

MOOD_MIN = 0
MOOD_MAX = 10

BEFORE_DOSING = timedelta(hours=72)
AFTER_DOSING_SHORT = timedelta(hours=24)
AFTER_DOSING_MEDIUM = timedelta(hours=72)
AFTER_DOSING_LONG = timedelta(days=7)

ACKNOWLEDGED_FLAGS_SHOWN = timedelta(days=30)

# A score completed more than this before the server received it is backfilled (as check-ins).
BACKFILL_AFTER = timedelta(hours=24)

# Response and remission are judged only from a baseline of at least moderate severity: PHQ-9
# >= 10 (Kroenke, Spitzer & Williams 2001, the cut-off for major depression) and GAD-7 >= 10
# (Spitzer et al. 2006, the cut-off for generalized anxiety disorder). Below it a 50% drop is a
# few points, within the instruments' noise.
RESPONSE_BASELINE_MINIMUM = 10

# The smallest change that counts as clinically meaningful, in points: PHQ-9 5 (Löwe et al.
# 2004, "Monitoring depression treatment outcomes with the PHQ-9", Medical Care 42:1194);
# GAD-7 4 (Toussaint et al. 2020, "Sensitivity to change and minimal clinically important
# difference of the GAD-7", J Affect Disord 265:395); PCL-5 10 (U.S. National Center for PTSD,
# "Using the PCL-5": a 10-20 point change is clinically meaningful).
MEANINGFUL_CHANGE: dict[Instrument, int] = {
    Instrument.PHQ9: 5,
    Instrument.GAD7: 4,
    Instrument.PCL5: 10,
}
PCL5_NO_RESPONSE = (
    "The PCL-5 has no standard response criterion: see meaningful_change (10 points or more)."
)
PCL5_NO_REMISSION = "The PCL-5 has no remission rule."


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
    backfilled: bool = False  # recorded more than 24 h before the server received it

    def __post_init__(self) -> None:
        _require_aware(self.at)
        if not MOOD_MIN <= self.mood <= MOOD_MAX:
            raise ValueError(f"mood must be from {MOOD_MIN} to {MOOD_MAX}, got {self.mood}")


@dataclass(frozen=True)
class AssessmentPoint:
    at: datetime  # completed_at: when the patient says it was answered
    instrument: Instrument
    total: int
    safety_flag: bool
    id: UUID
    # When the server received it: breaks ties on ``at``, and tells backfilled scores.
    received_at: datetime | None = None  # None: received when completed

    def __post_init__(self) -> None:
        _require_aware(self.at)
        if self.received_at is not None:
            _require_aware(self.received_at)

    @property
    def received(self) -> datetime:
        return self.at if self.received_at is None else self.received_at


@dataclass(frozen=True)
class DosingPoint:
    id: UUID
    at: datetime
    ended_at: datetime | None = None  # the end of the acute phase, when the patient said

    def __post_init__(self) -> None:
        _require_aware(self.at)
        if self.ended_at is not None:
            _require_aware(self.ended_at)


@dataclass(frozen=True)
class DailyMood:
    day: date
    mean: float | None
    count: int


class BaselineBasis(StrEnum):
    BEFORE_FIRST_SESSION = "before_first_session"  # the last score before the first dosing
    FIRST_AVAILABLE = "first_available"  # no score before dosing (or no dosing): the first one


class MeaningfulChange(StrEnum):
    IMPROVED = "improved"
    WORSENED = "worsened"
    NONE = "no_meaningful_change"


@dataclass(frozen=True)
class ScorePoint:
    assessment_id: UUID
    total: int
    completed_at: datetime
    backfilled: bool
    days_since_dosing: int | None  # whole days since the dosing session before it


@dataclass(frozen=True)
class InstrumentTrend:
    instrument: Instrument
    baseline_total: int
    baseline_at: datetime
    baseline_basis: BaselineBasis
    latest_total: int
    latest_at: datetime
    change: int
    meaningful_change: MeaningfulChange
    meaningful_change_points: int
    response: bool | None
    response_withheld: str | None
    remission: bool | None
    remission_withheld: str | None
    count: int
    series: list[ScorePoint]


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

    Baseline is the last score completed strictly before the first dosing session
    (``before_first_session``); without one, the first score (``first_available``). Scores are
    ordered by ``completed_at``, then by when the server received them, then by id.
    """
    starts = sorted(_utc(session.at) for session in dosing)
    by_instrument: dict[Instrument, list[AssessmentPoint]] = defaultdict(list)
    for assessment in assessments:
        by_instrument[assessment.instrument].append(assessment)
    return [
        _trend(instrument, by_instrument[instrument], starts)
        for instrument in Instrument
        if by_instrument[instrument]
    ]


def _chronological(assessment: AssessmentPoint) -> tuple[datetime, datetime, UUID]:
    # Two scores completed at the same instant: the one received later is the later one. The
    # id only makes the order total, whatever the input order.
    return (_utc(assessment.at), _utc(assessment.received), assessment.id)


def _withheld(
    instrument: Instrument,
    baseline: AssessmentPoint,
    latest: AssessmentPoint,
    first_dosing: datetime | None,
) -> str | None:
    """Why response and remission cannot be judged, or None when they can."""
    if first_dosing is None:
        return (
            "No dosing session yet: response and remission describe change after treatment starts."
        )
    if _utc(latest.at) <= first_dosing:
        return "No score after the first dosing session yet."
    if baseline.total < RESPONSE_BASELINE_MINIMUM:
        return (
            f"Baseline {baseline.total} is below {RESPONSE_BASELINE_MINIMUM}: too low for "
            "response or remission to mean anything."
        )
    return None


def _trend(
    instrument: Instrument, assessments: list[AssessmentPoint], starts: list[datetime]
) -> InstrumentTrend:
    ordered = sorted(assessments, key=_chronological)
    first_dosing = starts[0] if starts else None
    before_dosing = (
        [] if first_dosing is None else [a for a in ordered if _utc(a.at) < first_dosing]
    )
    if before_dosing:
        baseline, basis = before_dosing[-1], BaselineBasis.BEFORE_FIRST_SESSION
    else:
        baseline, basis = ordered[0], BaselineBasis.FIRST_AVAILABLE
    latest = ordered[-1]
    change = latest.total - baseline.total
    points = MEANINGFUL_CHANGE[instrument]
    if instrument is Instrument.PCL5:
        # Response (50%) and remission are not standard PCL-5 criteria: its meaningful change is.
        response, response_why = None, PCL5_NO_RESPONSE
        remission, remission_why = None, PCL5_NO_REMISSION
    else:
        why = _withheld(instrument, baseline, latest, first_dosing)
        if why is None:
            response, response_why = meets_response(baseline.total, latest.total), None
            remission, remission_why = in_remission(instrument, latest.total), None
        else:
            response, response_why, remission, remission_why = None, why, None, why
    return InstrumentTrend(
        instrument=instrument,
        baseline_total=baseline.total,
        baseline_at=baseline.at,
        baseline_basis=basis,
        latest_total=latest.total,
        latest_at=latest.at,
        change=change,
        meaningful_change=(
            MeaningfulChange.IMPROVED
            if -change >= points
            else MeaningfulChange.WORSENED
            if change >= points
            else MeaningfulChange.NONE
        ),
        meaningful_change_points=points,
        response=response,
        response_withheld=response_why,
        remission=remission,
        remission_withheld=remission_why,
        count=len(ordered),
        series=[_score_point(a, starts) for a in ordered],
    )


def _score_point(assessment: AssessmentPoint, starts: list[datetime]) -> ScorePoint:
    at = _utc(assessment.at)
    index = bisect_right(starts, at)
    since = None if index == 0 else (at - starts[index - 1]) // timedelta(days=1)
    return ScorePoint(
        assessment_id=assessment.id,
        total=assessment.total,
        completed_at=assessment.at,
        backfilled=_utc(assessment.received) - at > BACKFILL_AFTER,
        days_since_dosing=since,
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


def flag_shown_in_summary(acknowledged_at: datetime | None, *, now: datetime) -> bool:
    """Summaries show every open flag, and those acknowledged in the last 30 days (inclusive)."""
    _require_aware(now)
    if acknowledged_at is None:
        return True
    _require_aware(acknowledged_at)
    return _utc(acknowledged_at) >= _utc(now) - ACKNOWLEDGED_FLAGS_SHOWN


# --- Mood on the drug's time course ----------------------------------------------------------
#
# Ketamine's dissociative (acute) effects last about one to two hours after a dose; its
# antidepressant effect, when there is one, shows from about 24 hours, peaks in the first days
# and fades over one to two weeks (Zarate et al. 2006, Arch Gen Psychiatry 63:856; Murrough et
# al. 2013, Am J Psychiatry 170:1134). So mood during the acute phase is reported apart and never
# counted as effect, and the windows after it are disjoint, each on its own part of that course.

ACUTE_PHASE_DEFAULT = timedelta(hours=2)
# (name, start, end) after the session's start; the first begins at the end of the acute phase.
AFTER_WINDOWS: tuple[tuple[str, timedelta, timedelta], ...] = (
    ("day_0_1", timedelta(0), timedelta(days=1)),
    ("days_1_3", timedelta(days=1), timedelta(days=3)),
    ("days_3_7", timedelta(days=3), timedelta(days=7)),
    ("days_7_14", timedelta(days=7), timedelta(days=14)),
)
DURABILITY_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class MoodWindow:
    name: str  # "before", "during", "day_0_1", "days_1_3", "days_3_7", "days_7_14"
    start: datetime  # inclusive
    end: datetime  # exclusive; earlier than planned when cut short
    mean: float | None  # mean of the local days' means, 2 decimals
    days: int  # local days with check-ins
    checkins: int
    backfilled: int
    cut_short: bool  # the next dosing session started before the window's planned end


@dataclass(frozen=True)
class SessionMood:
    session_id: UUID
    at: datetime
    acute_end: datetime
    acute_end_assumed: bool  # no ended_at: started_at + 2 hours
    before: MoodWindow
    during: MoodWindow
    after: list[MoodWindow]
    durability_days: int | None
    durability_withheld: str | None


def _mean_of_fractions(values: Sequence[Fraction]) -> float | None:
    if not values:
        return None
    return _round2(sum(values, Fraction(0)) / len(values))


def _round2(exact: Fraction) -> float:
    """Halves up, as ``_mean`` rounds."""
    scaled = exact * 100
    floor = scaled.numerator // scaled.denominator
    up = 1 if scaled - floor >= Fraction(1, 2) else 0
    return float(Decimal(floor + up) / Decimal(100))


def _daily_means(moods: list[tuple[datetime, int, bool]], tz: tzinfo) -> dict[date, Fraction]:
    by_day: dict[date, list[int]] = defaultdict(list)
    for when, mood, _backfilled in moods:
        by_day[when.astimezone(tz).date()].append(mood)
    return {day: Fraction(sum(values), len(values)) for day, values in by_day.items()}


def _window(
    name: str,
    start: datetime,
    end: datetime,
    cut: datetime | None,
    moods: list[tuple[datetime, int, bool]],
    tz: tzinfo,
) -> MoodWindow:
    cut_short = cut is not None and cut < end
    end = min(end, cut) if cut is not None else end
    inside = [m for m in moods if start <= m[0] < end]
    means = _daily_means(inside, tz)
    return MoodWindow(
        name=name,
        start=start,
        end=max(start, end),
        mean=_mean_of_fractions(list(means.values())),
        days=len(means),
        checkins=len(inside),
        backfilled=sum(1 for m in inside if m[2]),
        cut_short=cut_short,
    )


def mood_on_the_time_course(
    points: Iterable[MoodPoint], dosing: Iterable[DosingPoint], *, tz: tzinfo
) -> list[SessionMood]:
    """Mood before, during and after each dosing session, ordered by start.

    Before: the 72 hours before the start. During: the acute phase, from the start to ended_at
    (or 2 hours on). After: day 0-1 from the end of the acute phase to 24 hours after the start,
    then days 1-3, 3-7 and 7-14 after the start. Every window includes its start and excludes its
    end, and each after-window stops at the next session's start (``cut_short``). A window's mean
    is the mean of its local days' means (days in ``tz``), so many check-ins on one day weigh as
    one day. Durability: days from the session's local day to the first local day, within 14
    days after the start (and before the next session), whose mean mood is at or below the
    before-mean.
    """
    moods = sorted((_utc(p.at), p.mood, p.backfilled) for p in points)
    sessions = sorted(dosing, key=lambda session: (_utc(session.at), session.id))
    starts = [_utc(session.at) for session in sessions]
    result = []
    for index, session in enumerate(sessions):
        at = starts[index]
        following = [start for start in starts[index + 1 :] if start > at]
        cut = following[0] if following else None
        acute_end = (
            _utc(session.ended_at) if session.ended_at is not None else at + ACUTE_PHASE_DEFAULT
        )
        before = _window("before", at - BEFORE_DOSING, at, None, moods, tz)
        during = _window("during", at, acute_end, cut, moods, tz)
        after = [
            _window(name, max(at + low, acute_end), max(at + high, acute_end), cut, moods, tz)
            for name, low, high in AFTER_WINDOWS
        ]
        days, why = _durability(at, acute_end, cut, before, moods, tz)
        result.append(
            SessionMood(
                session_id=session.id,
                at=session.at,
                acute_end=acute_end,
                acute_end_assumed=session.ended_at is None,
                before=before,
                during=during,
                after=after,
                durability_days=days,
                durability_withheld=why,
            )
        )
    return result


def _durability(
    at: datetime,
    acute_end: datetime,
    cut: datetime | None,
    before: MoodWindow,
    moods: list[tuple[datetime, int, bool]],
    tz: tzinfo,
) -> tuple[int | None, str | None]:
    if before.mean is None:
        return None, "No check-ins in the 72 hours before the session to compare with."
    end = at + DURABILITY_HORIZON
    if cut is not None:
        end = min(end, cut)
    after = _daily_means([m for m in moods if acute_end <= m[0] < end], tz)
    if not after:
        return None, "No check-ins after the session within 14 days."
    baseline = (
        sum(
            _daily_means([m for m in moods if at - BEFORE_DOSING <= m[0] < at], tz).values(),
            Fraction(0),
        )
        / before.days
    )
    session_day = at.astimezone(tz).date()
    for day in sorted(after):
        if after[day] <= baseline:
            return (day - session_day).days, None
    return None, (
        f"Mood stayed above the before-mean on all {len(after)} days with check-ins within 14 days."
    )
