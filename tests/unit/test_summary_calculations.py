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
    DailyMood,
    DosingMood,
    DosingPoint,
    InstrumentTrend,
    MoodPoint,
    daily_mood,
    instrument_trends,
    mood_around_dosing,
    recent_safety_flags,
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
    at: datetime, total: int, instrument: Instrument = PHQ9, n: int = 0, flag: bool = False
) -> AssessmentPoint:
    return AssessmentPoint(at=at, instrument=instrument, total=total, safety_flag=flag, id=uid(n))


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
        recent_safety_flags([], now=naive)


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
        latest_total=9,
        latest_at=day(20),
        change=-7,
        response=False,  # 9 is more than half of 16
        remission=False,
        count=4,
    )


def test_trends_baseline_is_first_assessment_without_dosing() -> None:
    [trend] = instrument_trends(BEFORE_AND_AFTER, [])
    assert trend == InstrumentTrend(
        instrument=PHQ9,
        baseline_total=20,
        baseline_at=day(1),
        latest_total=9,
        latest_at=day(20),
        change=-11,
        response=True,  # 9 is at most half of 20
        remission=False,
        count=4,
    )


def test_trends_baseline_is_first_assessment_when_none_precede_dosing() -> None:
    assessments = [assessment(day(8), 6, n=2), assessment(day(1), 14, n=1)]
    [trend] = instrument_trends(assessments, [DosingPoint(uid(9), day(0))])
    assert (trend.baseline_total, trend.baseline_at) == (14, day(1))
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


def test_trends_one_per_instrument_in_instrument_order() -> None:
    assessments = [
        assessment(day(9), 30, PCL5, n=4),
        assessment(day(2), 12, GAD7, n=1),
        assessment(day(1), 50, PCL5, n=3),
        assessment(day(8), 4, GAD7, n=2),
    ]
    trends = instrument_trends(assessments, [])
    assert [t.instrument for t in trends] == [GAD7, PCL5]
    gad, pcl = trends
    assert (gad.baseline_total, gad.latest_total, gad.change, gad.count) == (12, 4, -8, 2)
    assert (gad.response, gad.remission) == (True, True)
    assert (pcl.baseline_total, pcl.latest_total, pcl.change, pcl.count) == (50, 30, -20, 2)
    assert (pcl.response, pcl.remission) == (False, None)


def test_trends_single_assessment_is_its_own_baseline() -> None:
    [trend] = instrument_trends([assessment(day(1), 3, n=1)], [DosingPoint(uid(9), day(5))])
    assert trend == InstrumentTrend(PHQ9, 3, day(1), 3, day(1), 0, False, True, 1)


def test_trends_baseline_zero_never_responds() -> None:
    assessments = [assessment(day(1), 0, n=1), assessment(day(2), 0, n=2)]
    [trend] = instrument_trends(assessments, [])
    assert (trend.response, trend.remission, trend.change) == (False, True, 0)


def test_trends_worsening() -> None:
    assessments = [assessment(day(1), 4, GAD7, n=1), assessment(day(2), 15, GAD7, n=2)]
    [trend] = instrument_trends(assessments, [])
    assert (trend.change, trend.response, trend.remission) == (11, False, False)


def test_trends_equal_timestamps_do_not_depend_on_input_order() -> None:
    same_time = [assessment(day(1), 20, n=1), assessment(day(1), 8, n=2)]
    forward = instrument_trends(same_time, [])
    backward = instrument_trends(list(reversed(same_time)), [])
    assert forward == backward
    assert forward[0].count == 2


@st.composite
def assessment_history(draw: st.DrawFn) -> tuple[list[AssessmentPoint], list[DosingPoint]]:
    low, high = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    moments = draw(st.lists(aware_datetimes(low, high), max_size=25, unique_by=micros))
    assessments = []
    for n, at in enumerate(moments):
        instrument = draw(st.sampled_from(list(Instrument)))
        total = draw(st.integers(0, MAX_TOTAL[instrument]))
        assessments.append(assessment(at, total, instrument, n=n, flag=draw(st.booleans())))
    dosing_times = draw(st.lists(aware_datetimes(low, high), max_size=3))
    dosing = [DosingPoint(uid(1000 + n), at) for n, at in enumerate(dosing_times)]
    return assessments, dosing


def oracle_trends(
    assessments: list[AssessmentPoint], dosing: list[DosingPoint]
) -> list[InstrumentTrend]:
    trends = []
    for instrument in (PHQ9, GAD7, PCL5):
        history = sorted(
            (a for a in assessments if a.instrument == instrument), key=lambda a: micros(a.at)
        )
        if not history:
            continue
        baseline = history[0]
        if dosing:
            first_dosing = min(micros(d.at) for d in dosing)
            for a in history:
                if micros(a.at) < first_dosing:
                    baseline = a
        latest = history[-1]
        dropped = baseline.total - latest.total
        trends.append(
            InstrumentTrend(
                instrument=instrument,
                baseline_total=baseline.total,
                baseline_at=baseline.at,
                latest_total=latest.total,
                latest_at=latest.at,
                change=latest.total - baseline.total,
                response=baseline.total > 0 and Fraction(dropped, baseline.total) >= 0.5,
                remission=None if instrument == PCL5 else latest.total <= 4,
                count=len(history),
            )
        )
    return trends


@settings(max_examples=200)
@given(assessment_history(), st.randoms(use_true_random=False))
def test_trends_match_brute_force_in_any_order(
    case: tuple[list[AssessmentPoint], list[DosingPoint]], rng: Random
) -> None:
    assessments, dosing = case
    expected = oracle_trends(assessments, dosing)
    shuffled = list(assessments)
    rng.shuffle(shuffled)
    assert instrument_trends(shuffled, dosing) == expected


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
# recent_safety_flags
# ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def test_recent_safety_flags_window_and_order() -> None:
    assessments = [
        assessment(NOW - 14 * D + MICROSECOND, 12, n=1, flag=True),
        assessment(NOW - 14 * D, 12, n=2, flag=True),  # exactly 14 days: out
        assessment(NOW, 9, n=3, flag=True),
        assessment(NOW - 1 * H, 20, n=4, flag=False),  # recent but not flagged
        assessment(NOW - 3 * D, 15, GAD7, n=5, flag=True),
        assessment(NOW - 30 * D, 27, n=6, flag=True),
    ]
    result = recent_safety_flags(assessments, now=NOW)
    assert [a.id for a in result] == [uid(3), uid(5), uid(1)]


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, [uid(1)]), (2, [uid(1), uid(2)]), (30, [uid(1), uid(2), uid(3)])],
)
def test_recent_safety_flags_custom_days(days: int, expected: list[UUID]) -> None:
    assessments = [
        assessment(NOW - 20 * D, 5, n=3, flag=True),
        assessment(NOW - 12 * H, 5, n=1, flag=True),
        assessment(NOW - 1 * D - 1 * H, 5, n=2, flag=True),
    ]
    assert [a.id for a in recent_safety_flags(assessments, now=NOW, days=days)] == expected


def test_recent_safety_flags_empty() -> None:
    assert recent_safety_flags([], now=NOW) == []
    assert recent_safety_flags([assessment(NOW, 20, n=1)], now=NOW) == []


def test_recent_safety_flags_returns_the_points_themselves() -> None:
    flagged = assessment(NOW - 2 * D, 18, n=7, flag=True)
    assert recent_safety_flags([flagged], now=NOW) == [flagged]


def test_recent_safety_flags_counts_real_days_across_daylight_saving() -> None:
    # 14 real days before 20 March 12:00 EDT (16:00 UTC) is 6 March 16:00 UTC = 11:00 EST.
    now = datetime(2024, 3, 20, 12, 0, tzinfo=NEW_YORK)
    inside = assessment(datetime(2024, 3, 6, 11, 30, tzinfo=NEW_YORK), 5, n=1, flag=True)
    outside = assessment(datetime(2024, 3, 6, 11, 0, tzinfo=NEW_YORK), 5, n=2, flag=True)
    assert recent_safety_flags([outside, inside], now=now) == [inside]


@settings(max_examples=200)
@given(
    assessment_history(),
    aware_datetimes(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    st.integers(0, 60),
)
def test_recent_safety_flags_match_brute_force(
    case: tuple[list[AssessmentPoint], list[DosingPoint]], now: datetime, days: int
) -> None:
    assessments, _ = case
    since = micros(now) - days * 86_400_000_000
    expected = [a for a in assessments if a.safety_flag and micros(a.at) > since]
    expected.sort(key=lambda a: micros(a.at), reverse=True)
    assert recent_safety_flags(list(reversed(assessments)), now=now, days=days) == expected
