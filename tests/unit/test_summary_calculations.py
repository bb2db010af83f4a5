"""Tests for api.summary.calculations.

Oracles here compare instants as integer microseconds since the epoch and round means with
Fraction, so they share neither the datetime comparison rules nor the Decimal rounding of the
implementation.
"""

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from fractions import Fraction
from random import Random
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.assessments.scoring import Instrument
from api.summary.calculations import (
    AFTER_DOSING_LONG,
    AFTER_DOSING_MEDIUM,
    AFTER_DOSING_SHORT,
    BEFORE_DOSING,
    AssessmentPoint,
    BaselineBasis,
    DailyMood,
    DosingMood,
    DosingPoint,
    InstrumentTrend,
    MeaningfulChange,
    MoodPoint,
    ScorePoint,
    daily_mood,
    flag_shown_in_summary,
    instrument_trends,
    mood_around_dosing,
    mood_on_the_time_course,
)

PHQ9 = Instrument.PHQ9
GAD7 = Instrument.GAD7
PCL5 = Instrument.PCL5

NEW_YORK = ZoneInfo("America/New_York")
# Zones whose daylight-saving changes never happen at midnight, so local midnight always exists.
ZONES: list[tzinfo] = [
    UTC,
    NEW_YORK,
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Pacific/Chatham"),
    timezone(timedelta(hours=-11)),
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
T0 = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
MAX_TOTAL = {PHQ9: 27, GAD7: 21, PCL5: 80}


def micros(at: datetime) -> int:
    return (at - EPOCH) // MICROSECOND


def oracle_mean(moods: Sequence[int]) -> float | None:
    if not moods:
        return None
    exact = Fraction(sum(moods), len(moods))
    return float(Fraction(math.floor(exact * 100 + Fraction(1, 2)), 100))


def uid(n: int) -> UUID:
    return UUID(int=n)


def day(n: int, hour: int = 9) -> datetime:
    return datetime(2024, 1, 1, hour, tzinfo=UTC) + timedelta(days=n)


def assessment(
    at: datetime,
    total: int,
    instrument: Instrument = PHQ9,
    n: int = 0,
    flag: bool = False,
    received: datetime | None = None,
) -> AssessmentPoint:
    return AssessmentPoint(
        at=at, instrument=instrument, total=total, safety_flag=flag, id=uid(n), received_at=received
    )


def aware_datetimes(low: datetime, high: datetime) -> st.SearchStrategy[datetime]:
    # Hypothesis takes naive bounds and attaches a zone; imaginary (skipped) times are excluded.
    return st.datetimes(
        min_value=low.replace(tzinfo=None),
        max_value=high.replace(tzinfo=None),
        timezones=st.sampled_from(ZONES),
        allow_imaginary=False,
    )


# ---------------------------------------------------------------------------------------------
# Input dataclasses
# ---------------------------------------------------------------------------------------------


def test_naive_datetimes_are_rejected() -> None:
    naive = T0.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        MoodPoint(at=naive, mood=5)
    with pytest.raises(ValueError, match="timezone-aware"):
        DosingPoint(id=uid(1), at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        assessment(naive, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        flag_shown_in_summary(None, now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        assessment(T0, 3, received=naive)


@pytest.mark.parametrize("mood", [-1, 11])
def test_mood_out_of_range_is_rejected(mood: int) -> None:
    with pytest.raises(ValueError, match="mood must be from 0 to 10"):
        MoodPoint(at=T0, mood=mood)


@pytest.mark.parametrize("mood", [0, 10])
def test_mood_extremes_are_accepted(mood: int) -> None:
    assert MoodPoint(at=T0, mood=mood).mood == mood


# ---------------------------------------------------------------------------------------------
# daily_mood
# ---------------------------------------------------------------------------------------------

JAN_1 = date(2024, 1, 1)
JAN_2 = date(2024, 1, 2)
JAN_3 = date(2024, 1, 3)


def test_daily_mood_without_points_lists_every_day_empty() -> None:
    result = daily_mood([], start=JAN_1, end=JAN_3, tz=UTC)
    assert result == [
        DailyMood(day=JAN_1, mean=None, count=0),
        DailyMood(day=JAN_2, mean=None, count=0),
        DailyMood(day=JAN_3, mean=None, count=0),
    ]


def test_daily_mood_single_day_and_reversed_range() -> None:
    point = MoodPoint(at=datetime(2024, 1, 2, 12, tzinfo=UTC), mood=6)
    assert daily_mood([point], start=JAN_2, end=JAN_2, tz=UTC) == [DailyMood(JAN_2, 6.0, 1)]
    assert daily_mood([point], start=JAN_3, end=JAN_2, tz=UTC) == []


def test_daily_mood_utc_midnight_edges() -> None:
    points = [
        MoodPoint(at=datetime(2024, 1, 2, 0, 0, tzinfo=UTC), mood=8),
        MoodPoint(at=datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC), mood=2),
        MoodPoint(at=datetime(2024, 1, 2, 23, 59, 59, 999999, tzinfo=UTC), mood=5),
        MoodPoint(at=datetime(2024, 1, 1, 0, 0, tzinfo=UTC), mood=4),
    ]
    assert daily_mood(points, start=JAN_1, end=JAN_3, tz=UTC) == [
        DailyMood(JAN_1, 3.0, 2),
        DailyMood(JAN_2, 6.5, 2),
        DailyMood(JAN_3, None, 0),
    ]


@pytest.mark.parametrize(
    ("at", "tz", "expected_day"),
    [
        # 03:30 UTC on 2 Jan is 22:30 on 1 Jan in New York (EST, UTC-5).
        (datetime(2024, 1, 2, 3, 30, tzinfo=UTC), UTC, date(2024, 1, 2)),
        (datetime(2024, 1, 2, 3, 30, tzinfo=UTC), NEW_YORK, date(2024, 1, 1)),
        # 23:30 in New York on 1 Jan is already 2 Jan in UTC.
        (datetime(2024, 1, 1, 23, 30, tzinfo=NEW_YORK), NEW_YORK, date(2024, 1, 1)),
        (datetime(2024, 1, 1, 23, 30, tzinfo=NEW_YORK), UTC, date(2024, 1, 2)),
        # Either side of the spring-forward on 10 March: EST the evening before, EDT after.
        (datetime(2024, 3, 10, 4, 30, tzinfo=UTC), NEW_YORK, date(2024, 3, 9)),
        (datetime(2024, 3, 10, 5, 30, tzinfo=UTC), NEW_YORK, date(2024, 3, 10)),
        (datetime(2024, 3, 11, 3, 30, tzinfo=UTC), NEW_YORK, date(2024, 3, 10)),
        (datetime(2024, 3, 11, 4, 30, tzinfo=UTC), NEW_YORK, date(2024, 3, 11)),
    ],
)
def test_daily_mood_uses_the_calendar_day_in_the_given_zone(
    at: datetime, tz: tzinfo, expected_day: date
) -> None:
    start = expected_day - timedelta(days=1)
    end = expected_day + timedelta(days=1)
    result = daily_mood([MoodPoint(at=at, mood=7)], start=start, end=end, tz=tz)
    assert [entry.day for entry in result if entry.count] == [expected_day]
    assert [entry.mean for entry in result] == [
        7.0 if entry.day == expected_day else None for entry in result
    ]


def test_daily_mood_ignores_points_outside_the_range() -> None:
    points = [
        MoodPoint(at=datetime(2024, 1, 1, 23, 0, tzinfo=UTC), mood=1),
        MoodPoint(at=datetime(2024, 1, 2, 1, 0, tzinfo=UTC), mood=9),
        MoodPoint(at=datetime(2024, 1, 4, 0, 0, tzinfo=UTC), mood=1),
    ]
    assert daily_mood(points, start=JAN_2, end=JAN_3, tz=UTC) == [
        DailyMood(JAN_2, 9.0, 1),
        DailyMood(JAN_3, None, 0),
    ]


@pytest.mark.parametrize(
    ("moods", "mean"),
    [
        ([5], 5.0),
        ([10, 9], 9.5),
        ([1, 2, 2], 1.67),
        ([0, 0, 1], 0.33),
        ([1, 0, 0, 0, 0, 0, 0, 0], 0.13),  # 0.125: halves round up, not to even
        ([3, 0, 0, 0, 0, 0, 0, 0], 0.38),  # 0.375
        ([1] + [0] * 39, 0.03),  # 0.025, which binary floats store as just below
        ([0, 0, 0, 0], 0.0),
    ],
)
def test_daily_mood_mean_is_rounded_to_two_decimals(moods: list[int], mean: float) -> None:
    points = [MoodPoint(at=T0 + timedelta(minutes=i), mood=m) for i, m in enumerate(moods)]
    [entry] = daily_mood(points, start=T0.date(), end=T0.date(), tz=UTC)
    assert entry.mean == mean
    assert entry.count == len(moods)


def test_daily_mood_accepts_a_one_shot_iterable_in_any_order() -> None:
    points = [
        MoodPoint(at=datetime(2024, 1, 3, 8, tzinfo=UTC), mood=4),
        MoodPoint(at=datetime(2024, 1, 1, 8, tzinfo=UTC), mood=2),
        MoodPoint(at=datetime(2024, 1, 3, 9, tzinfo=UTC), mood=7),
    ]
    assert daily_mood(iter(points), start=JAN_1, end=JAN_3, tz=UTC) == [
        DailyMood(JAN_1, 2.0, 1),
        DailyMood(JAN_2, None, 0),
        DailyMood(JAN_3, 5.5, 2),
    ]


@st.composite
def mood_series(draw: st.DrawFn) -> tuple[list[MoodPoint], date, date, tzinfo]:
    start = draw(st.dates(date(2024, 1, 1), date(2024, 12, 20)))
    end = start + timedelta(days=draw(st.integers(0, 6)))
    low = datetime.combine(start - timedelta(days=1), time(), tzinfo=UTC)
    high = datetime.combine(end + timedelta(days=2), time(), tzinfo=UTC)
    point = st.builds(MoodPoint, at=aware_datetimes(low, high), mood=st.integers(0, 10))
    points = draw(st.lists(point, max_size=40))
    return points, start, end, draw(st.sampled_from(ZONES))


@settings(max_examples=200)
@given(mood_series())
def test_daily_mood_matches_brute_force(case: tuple[list[MoodPoint], date, date, tzinfo]) -> None:
    points, start, end, tz = case
    expected = []
    current = start
    while current <= end:
        begins = micros(datetime.combine(current, time(), tzinfo=tz))
        ends = micros(datetime.combine(current + timedelta(days=1), time(), tzinfo=tz))
        moods = [p.mood for p in points if begins <= micros(p.at) < ends]
        expected.append(DailyMood(current, oracle_mean(moods), len(moods)))
        current += timedelta(days=1)
    assert daily_mood(points, start=start, end=end, tz=tz) == expected


# ---------------------------------------------------------------------------------------------
# instrument_trends
# ---------------------------------------------------------------------------------------------


def test_trends_empty() -> None:
    assert instrument_trends([], []) == []
    assert instrument_trends([], [DosingPoint(uid(1), day(0))]) == []


# The published rules, written out here rather than taken from the code:
# - meaningful change, in points: PHQ-9 5 (Löwe et al. 2004), GAD-7 4 (Toussaint et al. 2020),
#   PCL-5 10 (U.S. National Center for PTSD, "Using the PCL-5");
# - response: the latest score at most half the baseline; remission: PHQ-9 or GAD-7 of 4 or
#   less; both judged only from a baseline of 10 or more (the instruments' cut-offs for
#   moderate symptoms) and a latest score completed after the first dosing session;
# - the PCL-5 has neither a standard response criterion nor a remission rule.
MCID = {PHQ9: 5, GAD7: 4, PCL5: 10}
DAY_MICROS = 86_400_000_000


# PHQ-9 scores 20, 16, 12, 9 around a dosing session on day 5, given out of order.
BEFORE_AND_AFTER = [
    assessment(day(10), 12, n=3),
    assessment(day(1), 20, n=1),
    assessment(day(20), 9, n=4),
    assessment(day(3), 16, n=2),
]


def test_trends_baseline_is_last_assessment_before_first_dosing() -> None:
    [trend] = instrument_trends(BEFORE_AND_AFTER, [DosingPoint(uid(9), day(5))])
    assert trend == InstrumentTrend(
        instrument=PHQ9,
        baseline_total=16,
        baseline_at=day(3),
        baseline_basis=BaselineBasis.BEFORE_FIRST_SESSION,
        latest_total=9,
        latest_at=day(20),
        change=-7,
        meaningful_change=MeaningfulChange.IMPROVED,
        meaningful_change_points=5,
        response=False,  # 9 is more than half of 16
        response_withheld=None,
        remission=False,
        remission_withheld=None,
        count=4,
        series=[
            ScorePoint(uid(1), 20, day(1), False, None),
            ScorePoint(uid(2), 16, day(3), False, None),
            ScorePoint(uid(3), 12, day(10), False, 5),
            ScorePoint(uid(4), 9, day(20), False, 15),
        ],
    )


def test_trends_without_dosing_withhold_response_and_remission() -> None:
    [trend] = instrument_trends(BEFORE_AND_AFTER, [])
    assert (trend.baseline_total, trend.baseline_basis) == (20, BaselineBasis.FIRST_AVAILABLE)
    assert (trend.change, trend.meaningful_change) == (-11, MeaningfulChange.IMPROVED)
    assert (trend.response, trend.remission) == (None, None)
    assert trend.response_withheld is not None
    assert "dosing session" in trend.response_withheld


def test_a_drop_from_3_to_1_is_no_response_and_a_single_low_score_no_remission() -> None:
    # The two overclaims: 3 -> 1 is "a 67% drop" of nothing; one PHQ-9 of 3 with no
    # treatment is not remission.
    dosing = [DosingPoint(uid(9), day(2))]
    [trend] = instrument_trends([assessment(day(1), 3, n=1), assessment(day(5), 1, n=2)], dosing)
    assert (trend.response, trend.remission) == (None, None)
    assert trend.response_withheld is not None
    assert "below 10" in trend.response_withheld
    assert trend.meaningful_change is MeaningfulChange.NONE
    [single] = instrument_trends([assessment(day(1), 3, n=1)], [])
    assert (single.response, single.remission) == (None, None)


def test_trends_baseline_is_first_assessment_when_none_precede_dosing() -> None:
    assessments = [assessment(day(8), 6, n=2), assessment(day(1), 14, n=1)]
    [trend] = instrument_trends(assessments, [DosingPoint(uid(9), day(0))])
    assert (trend.baseline_total, trend.baseline_at) == (14, day(1))
    assert trend.baseline_basis is BaselineBasis.FIRST_AVAILABLE
    assert (trend.latest_total, trend.latest_at) == (6, day(8))
    assert trend.change == -8
    assert trend.response is True
    assert trend.remission is False


def test_trends_assessment_at_the_dosing_instant_is_not_before_it() -> None:
    assessments = [assessment(day(1), 10, n=1), assessment(day(5), 20, n=2)]
    assessments.append(assessment(day(9), 6, n=3))
    [trend] = instrument_trends(assessments, [DosingPoint(uid(9), day(5))])
    assert trend.baseline_total == 10
    assert trend.response is False  # 6 is more than half of 10 (it would be half of 20)
    # Nor is the latest score at the dosing instant after it.
    [at_dosing] = instrument_trends(assessments[:2], [DosingPoint(uid(9), day(5))])
    assert at_dosing.response is None


def test_trends_first_dosing_is_the_earliest_whatever_the_order() -> None:
    assessments = [
        assessment(day(5), 12, n=2),
        assessment(day(1), 18, n=1),
        assessment(day(12), 8, n=3),
    ]
    dosing = [DosingPoint(uid(8), day(10)), DosingPoint(uid(9), day(3))]
    [trend] = instrument_trends(assessments, dosing)
    assert trend.baseline_total == 18
    assert trend.response is True  # 8 <= 9; against 12 it would not be
    assert [p.days_since_dosing for p in trend.series] == [None, 2, 2]


def test_trends_compare_real_instants_across_the_autumn_fold() -> None:
    # On 3 Nov 2024 New York shows 01:00-01:59 twice. 01:30 EDT (05:30 UTC) comes before
    # 01:10 EST (06:10 UTC), though its wall-clock time is later.
    dosing_at = datetime(2024, 11, 3, 1, 10, tzinfo=NEW_YORK, fold=1)
    assessments = [
        assessment(datetime(2024, 10, 1, 12, tzinfo=NEW_YORK), 20, n=1),
        assessment(datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK), 10, n=2),
        assessment(datetime(2024, 12, 1, 12, tzinfo=NEW_YORK), 6, n=3),
    ]
    [trend] = instrument_trends(assessments, [DosingPoint(uid(9), dosing_at)])
    assert trend.baseline_total == 10
    assert trend.response is False


def test_pcl5_reports_meaningful_change_and_never_response_or_remission() -> None:
    assessments = [
        assessment(day(9), 30, PCL5, n=4),
        assessment(day(2), 12, GAD7, n=1),
        assessment(day(1), 50, PCL5, n=3),
        assessment(day(8), 4, GAD7, n=2),
    ]
    trends = instrument_trends(assessments, [DosingPoint(uid(9), day(5))])
    assert [t.instrument for t in trends] == [GAD7, PCL5]
    gad, pcl = trends
    assert (gad.baseline_total, gad.latest_total, gad.change, gad.count) == (12, 4, -8, 2)
    assert (gad.response, gad.remission, gad.meaningful_change_points) == (True, True, 4)
    assert (pcl.baseline_total, pcl.latest_total, pcl.change, pcl.count) == (50, 30, -20, 2)
    assert (pcl.response, pcl.remission) == (None, None)
    assert pcl.meaningful_change is MeaningfulChange.IMPROVED
    assert pcl.response_withheld is not None
    assert "PCL-5" in pcl.response_withheld


def test_trends_worsening_is_a_meaningful_change_too() -> None:
    assessments = [assessment(day(1), 4, GAD7, n=1), assessment(day(2), 15, GAD7, n=2)]
    [trend] = instrument_trends(assessments, [])
    assert (trend.change, trend.meaningful_change) == (11, MeaningfulChange.WORSENED)


def test_equal_completion_times_are_ordered_by_receipt() -> None:
    # Entered the other way round from how they were completed: the one received later is the
    # latest, whatever the ids or the input order.
    received_first = assessment(day(1), 20, n=2, received=day(1) + H)
    received_last = assessment(day(1), 2, n=1, received=day(1) + 2 * H)
    for given_order in ([received_first, received_last], [received_last, received_first]):
        [trend] = instrument_trends(given_order, [])
        assert (trend.baseline_total, trend.latest_total) == (20, 2)


def test_backfilled_scores_are_marked() -> None:
    late = assessment(day(1), 9, n=1, received=day(1) + 24 * H + MICROSECOND)
    on_time = assessment(day(3), 9, n=2, received=day(3) + 24 * H)
    [trend] = instrument_trends([late, on_time], [])
    assert [p.backfilled for p in trend.series] == [True, False]


@st.composite
def assessment_history(draw: st.DrawFn) -> tuple[list[AssessmentPoint], list[DosingPoint]]:
    low, high = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    # Repeated moments on purpose: ties on completed_at are broken by receipt.
    moments = draw(
        st.lists(
            st.sampled_from([low + n * 7 * H for n in range(40)]) | aware_datetimes(low, high),
            max_size=25,
        )
    )
    assessments = []
    for n, at in enumerate(moments):
        instrument = draw(st.sampled_from(list(Instrument)))
        total = draw(st.integers(0, MAX_TOTAL[instrument]))
        delay = draw(
            st.sampled_from([None, timedelta(0), 24 * H, 24 * H + MICROSECOND])
            | st.timedeltas(timedelta(0), 5 * D)
        )
        received = None if delay is None else at + delay
        assessments.append(
            assessment(at, total, instrument, n=n, flag=draw(st.booleans()), received=received)
        )
    dosing_times = draw(st.lists(aware_datetimes(low, high), max_size=3))
    dosing = [DosingPoint(uid(1000 + n), at) for n, at in enumerate(dosing_times)]
    return assessments, dosing


def oracle_trends(
    assessments: list[AssessmentPoint], dosing: list[DosingPoint]
) -> list[tuple[object, ...]]:
    """What the published rules give, as plain tuples (reasons in words are checked apart)."""
    trends: list[tuple[object, ...]] = []
    starts = sorted(micros(d.at) for d in dosing)
    for instrument in (PHQ9, GAD7, PCL5):

        def received(a: AssessmentPoint) -> int:
            return micros(a.received_at if a.received_at is not None else a.at)

        history = sorted(
            (a for a in assessments if a.instrument == instrument),
            key=lambda a: (micros(a.at), received(a), a.id.int),
        )
        if not history:
            continue
        baseline, basis = history[0], "first_available"
        for a in history:
            if starts and micros(a.at) < starts[0]:
                baseline, basis = a, "before_first_session"
        latest = history[-1]
        change = latest.total - baseline.total
        judged = (
            instrument != PCL5
            and bool(starts)
            and micros(latest.at) > starts[0]
            and baseline.total >= 10
        )
        response = Fraction(latest.total, baseline.total) <= Fraction(1, 2) if judged else None
        remission = latest.total <= 4 if judged else None
        meaningful = (
            "improved"
            if -change >= MCID[instrument]
            else "worsened"
            if change >= MCID[instrument]
            else "no_meaningful_change"
        )
        series = []
        for a in history:
            before = [s for s in starts if s <= micros(a.at)]
            since = (micros(a.at) - before[-1]) // DAY_MICROS if before else None
            backfilled = received(a) - micros(a.at) > 24 * 3_600_000_000
            series.append((a.id, a.total, a.at, backfilled, since))
        trends.append(
            (
                instrument,
                baseline.total,
                baseline.at,
                basis,
                latest.total,
                latest.at,
                change,
                meaningful,
                MCID[instrument],
                response,
                remission,
                len(history),
                series,
            )
        )
    return trends


def as_tuple(trend: InstrumentTrend) -> tuple[object, ...]:
    return (
        trend.instrument,
        trend.baseline_total,
        trend.baseline_at,
        trend.baseline_basis.value,
        trend.latest_total,
        trend.latest_at,
        trend.change,
        trend.meaningful_change.value,
        trend.meaningful_change_points,
        trend.response,
        trend.remission,
        trend.count,
        [
            (p.assessment_id, p.total, p.completed_at, p.backfilled, p.days_since_dosing)
            for p in trend.series
        ],
    )


@settings(max_examples=300)
@given(assessment_history(), st.randoms(use_true_random=False))
def test_trends_match_the_published_rules_in_any_order(
    case: tuple[list[AssessmentPoint], list[DosingPoint]], rng: Random
) -> None:
    assessments, dosing = case
    shuffled = list(assessments)
    rng.shuffle(shuffled)
    trends = instrument_trends(shuffled, dosing)
    assert [as_tuple(t) for t in trends] == oracle_trends(assessments, dosing)
    for trend in trends:
        # A withheld figure always says why, and a given one never carries a reason.
        assert (trend.response is None) == (trend.response_withheld is not None)
        assert (trend.remission is None) == (trend.remission_withheld is not None)


# ---------------------------------------------------------------------------------------------
# mood_around_dosing
# ---------------------------------------------------------------------------------------------


def test_window_constants() -> None:
    assert timedelta(hours=72) == BEFORE_DOSING
    assert timedelta(hours=24) == AFTER_DOSING_SHORT
    assert timedelta(hours=72) == AFTER_DOSING_MEDIUM
    assert timedelta(days=7) == AFTER_DOSING_LONG


def test_mood_around_dosing_empty() -> None:
    assert mood_around_dosing([MoodPoint(T0, 5)], []) == []
    assert mood_around_dosing([], [DosingPoint(uid(1), T0)]) == [
        DosingMood(uid(1), T0, None, None, None, None)
    ]


H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("offset", "windows"),
    [
        # windows: (before 72h, after 24h, after 72h, after 7d)
        (-72 * H - MICROSECOND, (False, False, False, False)),
        (-72 * H, (True, False, False, False)),
        (-MICROSECOND, (True, False, False, False)),
        (timedelta(0), (False, False, False, False)),
        (MICROSECOND, (False, True, True, True)),
        (24 * H, (False, True, True, True)),
        (24 * H + MICROSECOND, (False, False, True, True)),
        (72 * H, (False, False, True, True)),
        (72 * H + MICROSECOND, (False, False, False, True)),
        (7 * D, (False, False, False, True)),
        (7 * D + MICROSECOND, (False, False, False, False)),
    ],
)
def test_mood_around_dosing_window_edges(
    offset: timedelta, windows: tuple[bool, bool, bool, bool]
) -> None:
    [result] = mood_around_dosing([MoodPoint(T0 + offset, 6)], [DosingPoint(uid(1), T0)])
    found = (result.before_72h, result.after_24h, result.after_72h, result.after_7d)
    assert found == tuple(6.0 if inside else None for inside in windows)


def test_mood_around_dosing_means_per_window() -> None:
    points = [
        MoodPoint(T0 - 80 * H, 0),  # outside every window
        MoodPoint(T0 - 70 * H, 2),
        MoodPoint(T0 - 1 * H, 3),
        MoodPoint(T0 - 2 * H, 3),
        MoodPoint(T0 + 2 * H, 8),
        MoodPoint(T0 + 30 * H, 6),
        MoodPoint(T0 + 5 * D, 4),
        MoodPoint(T0 + 8 * D, 0),  # outside every window
    ]
    [result] = mood_around_dosing(points, [DosingPoint(uid(1), T0)])
    assert result == DosingMood(
        session_id=uid(1),
        at=T0,
        before_72h=2.67,  # 8 / 3
        after_24h=8.0,
        after_72h=7.0,
        after_7d=6.0,
    )


def test_mood_around_dosing_orders_sessions_and_shares_points() -> None:
    later = DosingPoint(uid(1), T0 + 2 * D)
    earlier = DosingPoint(uid(2), T0)
    points = (p for p in [MoodPoint(T0 + 1 * D, 9), MoodPoint(T0 + 3 * D, 1)])
    first, second = mood_around_dosing(points, [later, earlier])
    assert first == DosingMood(uid(2), T0, None, 9.0, 5.0, 5.0)
    assert second == DosingMood(uid(1), T0 + 2 * D, 9.0, 1.0, 1.0, 1.0)


def test_mood_around_dosing_windows_are_real_hours_across_daylight_saving() -> None:
    # New York springs forward on 10 March 2024. 72 real hours before 11 March 12:00 EDT
    # (16:00 UTC) is 8 March 16:00 UTC, i.e. 11:00 EST; wall-clock arithmetic would say 12:00.
    dosing_at = datetime(2024, 3, 11, 12, 0, tzinfo=NEW_YORK)
    inside = MoodPoint(datetime(2024, 3, 8, 11, 30, tzinfo=NEW_YORK), 4)
    outside = MoodPoint(datetime(2024, 3, 8, 10, 59, tzinfo=NEW_YORK), 10)
    [result] = mood_around_dosing([inside, outside], [DosingPoint(uid(1), dosing_at)])
    assert result.before_72h == 4.0


EDGE_OFFSETS = [
    sign * window + nudge
    for window in (72 * H, 24 * H, 7 * D, timedelta(0))
    for sign in (1, -1)
    for nudge in (-MICROSECOND, timedelta(0), MICROSECOND)
]


@st.composite
def dosing_with_moods(draw: st.DrawFn) -> tuple[list[MoodPoint], list[DosingPoint]]:
    low, high = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    dosing_times = draw(st.lists(aware_datetimes(low, high), max_size=4))
    dosing = [DosingPoint(uid(n), at) for n, at in enumerate(dosing_times)]
    points = []
    for _ in range(draw(st.integers(0, 30))):
        mood = draw(st.integers(0, 10))
        near_dosing = draw(st.booleans())
        if dosing and near_dosing:
            anchor = draw(st.sampled_from(dosing)).at.astimezone(UTC)
            offset = draw(st.one_of(st.sampled_from(EDGE_OFFSETS), st.timedeltas(-8 * D, 8 * D)))
            at = (anchor + offset).astimezone(draw(st.sampled_from(ZONES)))
        else:
            at = draw(aware_datetimes(low - 8 * D, high + 8 * D))
        points.append(MoodPoint(at, mood))
    return points, dosing


@settings(max_examples=200)
@given(dosing_with_moods())
def test_mood_around_dosing_matches_brute_force(
    case: tuple[list[MoodPoint], list[DosingPoint]],
) -> None:
    points, dosing = case
    hour = 3_600_000_000
    expected = []
    for session in sorted(dosing, key=lambda s: (micros(s.at), s.id)):
        t = micros(session.at)
        before = [p.mood for p in points if t - 72 * hour <= micros(p.at) < t]
        after = {
            hours: [p.mood for p in points if t < micros(p.at) <= t + hours * hour]
            for hours in (24, 72, 168)
        }
        expected.append(
            DosingMood(
                session_id=session.id,
                at=session.at,
                before_72h=oracle_mean(before),
                after_24h=oracle_mean(after[24]),
                after_72h=oracle_mean(after[72]),
                after_7d=oracle_mean(after[168]),
            )
        )
    assert mood_around_dosing(points, dosing) == expected


# ---------------------------------------------------------------------------------------------
# flag_shown_in_summary
# ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def test_an_open_flag_is_always_shown_and_never_expires() -> None:
    assert flag_shown_in_summary(None, now=NOW) is True
    assert flag_shown_in_summary(None, now=NOW + 3650 * D) is True


def test_acknowledged_flags_are_shown_for_30_days() -> None:
    assert flag_shown_in_summary(NOW - 30 * D, now=NOW) is True
    assert flag_shown_in_summary(NOW - 30 * D - MICROSECOND, now=NOW) is False
    # Real days, across New York's spring change.
    now = datetime(2024, 3, 20, 12, 0, tzinfo=NEW_YORK)
    assert flag_shown_in_summary(datetime(2024, 2, 19, 11, 0, tzinfo=NEW_YORK), now=now) is True


@settings(max_examples=200)
@given(
    st.none() | aware_datetimes(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)),
    aware_datetimes(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)),
)
def test_flag_shown_matches_the_rule(acknowledged_at: datetime | None, now: datetime) -> None:
    expected = acknowledged_at is None or micros(now) - micros(acknowledged_at) <= 30 * DAY_MICROS
    assert flag_shown_in_summary(acknowledged_at, now=now) is expected


# ---------------------------------------------------------------------------------------------
# mood_on_the_time_course
# ---------------------------------------------------------------------------------------------

# The windows as the issue states them, in hours after the session's start (the first starts at
# the end of the acute phase, 2 hours when no end is given).
COURSE = [("day_0_1", 0, 24), ("days_1_3", 24, 72), ("days_3_7", 72, 168), ("days_7_14", 168, 336)]
HOUR_MICROS = 3_600_000_000


def test_the_acute_phase_is_during_and_never_effect() -> None:
    start = T0
    points = [
        MoodPoint(start + 30 * timedelta(minutes=1), 10),  # acute
        MoodPoint(start + 2 * H, 6),  # first instant after the default acute phase
        MoodPoint(start - H, 3),
    ]
    (course,) = mood_on_the_time_course(points, [DosingPoint(uid(1), start)], tz=UTC)
    assert course.acute_end == start + 2 * H
    assert course.acute_end_assumed is True
    assert (course.during.mean, course.during.checkins) == (10.0, 1)
    assert [w.name for w in course.after] == ["day_0_1", "days_1_3", "days_3_7", "days_7_14"]
    assert (course.after[0].mean, course.after[0].start) == (6.0, start + 2 * H)
    assert course.before.mean == 3.0
    # Given, ended_at moves the acute phase's end.
    (longer,) = mood_on_the_time_course(
        points, [DosingPoint(uid(1), start, ended_at=start + 3 * H)], tz=UTC
    )
    assert (longer.during.checkins, longer.after[0].checkins) == (2, 0)


def test_means_are_per_local_day_so_one_busy_day_does_not_dominate() -> None:
    start = datetime(2024, 5, 10, 9, tzinfo=UTC)
    busy = [MoodPoint(start + 4 * H + n * timedelta(minutes=5), 9) for n in range(10)]
    quiet = [MoodPoint(start + 30 * H, 3)]
    (course,) = mood_on_the_time_course(busy + quiet, [DosingPoint(uid(1), start)], tz=UTC)
    assert course.after[0].mean == 9.0
    assert course.after[1].mean == 3.0
    (week,) = mood_on_the_time_course(
        busy + quiet,
        [DosingPoint(uid(1), start)],
        tz=UTC,
    )
    assert (week.after[0].days, week.after[0].checkins) == (1, 10)


def test_a_window_stops_at_the_next_session_and_says_so() -> None:
    first, second = T0, T0 + 2 * D
    points = [MoodPoint(T0 + 36 * H, 5), MoodPoint(T0 + 60 * H, 8)]
    one, two = mood_on_the_time_course(
        points, [DosingPoint(uid(2), second), DosingPoint(uid(1), first)], tz=UTC
    )
    assert one.session_id == uid(1)
    assert (one.after[1].end, one.after[1].cut_short, one.after[1].checkins) == (second, True, 1)
    assert all(w.cut_short and w.checkins == 0 for w in one.after[2:])
    assert one.after[0].cut_short is False
    assert two.after[0].checkins == 1  # 60 h after the first is 12 h after the second


def test_durability_counts_days_until_mood_is_back_at_the_before_mean() -> None:
    start = datetime(2024, 5, 10, 9, tzinfo=UTC)
    before = [MoodPoint(start - 10 * H, 4)]
    after = [MoodPoint(start + n * D + 3 * H, mood) for n, mood in [(1, 8), (2, 7), (4, 4), (5, 3)]]
    (course,) = mood_on_the_time_course(before + after, [DosingPoint(uid(1), start)], tz=UTC)
    assert (course.durability_days, course.durability_withheld) == (4, None)
    (lasting,) = mood_on_the_time_course(before + after[:2], [DosingPoint(uid(1), start)], tz=UTC)
    assert lasting.durability_days is None
    assert lasting.durability_withheld is not None
    assert "stayed above" in lasting.durability_withheld
    (unknown,) = mood_on_the_time_course(after, [DosingPoint(uid(1), start)], tz=UTC)
    assert unknown.durability_days is None
    assert unknown.durability_withheld is not None
    assert "72 hours before" in unknown.durability_withheld


def test_a_late_evening_check_in_counts_on_its_local_day() -> None:
    # 23:30 in New York on day 1 after the session is 03:30 UTC the next day: one day in New
    # York (two check-ins on the same local day), two days in UTC.
    start = datetime(2024, 5, 10, 9, tzinfo=NEW_YORK)
    points = [
        MoodPoint(datetime(2024, 5, 11, 18, 0, tzinfo=NEW_YORK), 2),
        MoodPoint(datetime(2024, 5, 11, 23, 30, tzinfo=NEW_YORK), 8),
    ]
    (local,) = mood_on_the_time_course(points, [DosingPoint(uid(1), start)], tz=NEW_YORK)
    (utc,) = mood_on_the_time_course(points, [DosingPoint(uid(1), start)], tz=UTC)
    assert (local.after[1].days, utc.after[1].days) == (1, 2)


@st.composite
def time_course_case(
    draw: st.DrawFn,
) -> tuple[list[MoodPoint], list[DosingPoint], tzinfo]:
    low, high = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 15, tzinfo=UTC)
    starts = draw(st.lists(aware_datetimes(low, high), max_size=3))
    dosing = []
    for n, at in enumerate(starts):
        length = draw(st.none() | st.timedeltas(timedelta(minutes=1), timedelta(hours=30)))
        dosing.append(DosingPoint(uid(100 + n), at, None if length is None else at + length))
    near = [
        st.builds(lambda at, offset: at + offset, st.just(d.at), st.timedeltas(-4 * D, 15 * D))
        for d in dosing
    ]
    moments = st.one_of(aware_datetimes(low, high), *near) if near else aware_datetimes(low, high)
    points = draw(
        st.lists(st.builds(MoodPoint, moments, st.integers(0, 10), st.booleans()), max_size=40)
    )
    return points, dosing, draw(st.sampled_from(ZONES))


def oracle_window(
    name: str, start: int, end: int, cut: int | None, points: list[MoodPoint], tz: tzinfo
) -> tuple[object, ...]:
    cut_short = cut is not None and cut < end
    if cut is not None:
        end = min(end, cut)
    inside = [p for p in points if start <= micros(p.at) < end]
    days: dict[date, list[int]] = {}
    for p in inside:
        days.setdefault(p.at.astimezone(tz).date(), []).append(p.mood)
    means = [Fraction(sum(v), len(v)) for v in days.values()]
    mean = None
    if means:
        exact = sum(means, Fraction(0)) / len(means)
        mean = float(Fraction(math.floor(exact * 100 + Fraction(1, 2)), 100))
    return (name, mean, len(days), len(inside), sum(p.backfilled for p in inside), cut_short)


@settings(max_examples=200)
@given(time_course_case())
def test_time_course_matches_the_rules(
    case: tuple[list[MoodPoint], list[DosingPoint], tzinfo],
) -> None:
    points, dosing, tz = case
    result = mood_on_the_time_course(points, dosing, tz=tz)
    ordered = sorted(dosing, key=lambda d: (micros(d.at), d.id.int))
    assert [c.session_id for c in result] == [d.id for d in ordered]
    for course, session in zip(result, ordered, strict=True):
        at = micros(session.at)
        later = [micros(d.at) for d in ordered if micros(d.at) > at]
        cut = min(later) if later else None
        acute = micros(session.ended_at) if session.ended_at else at + 2 * HOUR_MICROS
        expected = [
            oracle_window("before", at - 72 * HOUR_MICROS, at, None, points, tz),
            oracle_window("during", at, acute, cut, points, tz),
        ] + [
            oracle_window(
                name,
                max(at + low * HOUR_MICROS, acute),
                max(at + high * HOUR_MICROS, acute),
                cut,
                points,
                tz,
            )
            for name, low, high in COURSE
        ]
        got = [
            (w.name, w.mean, w.days, w.checkins, w.backfilled, w.cut_short)
            for w in (course.before, course.during, *course.after)
        ]
        assert got == expected
        # Durability, from the rule: the first local day within 14 days after the start (and
        # before the next session), after the acute phase, whose mean is at or below the mean
        # of the before-window's local days.
        before_days: dict[date, list[int]] = {}
        for p in points:
            if at - 72 * HOUR_MICROS <= micros(p.at) < at:
                before_days.setdefault(p.at.astimezone(tz).date(), []).append(p.mood)
        horizon = at + 14 * 24 * HOUR_MICROS
        if cut is not None:
            horizon = min(horizon, cut)
        after_days: dict[date, list[int]] = {}
        for p in points:
            if acute <= micros(p.at) < horizon:
                after_days.setdefault(p.at.astimezone(tz).date(), []).append(p.mood)
        expected_days = None
        if before_days and after_days:
            level = sum((Fraction(sum(v), len(v)) for v in before_days.values()), Fraction(0))
            level /= len(before_days)
            session_day = session.at.astimezone(tz).date()
            for day in sorted(after_days):
                if Fraction(sum(after_days[day]), len(after_days[day])) <= level:
                    expected_days = (day - session_day).days
                    break
        assert course.durability_days == expected_days
        assert (course.durability_days is None) == (course.durability_withheld is not None)
