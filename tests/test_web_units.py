"""The web view's pure parts: the chart's geometry, the timeline's merge, bands by total."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.assessments.scoring import ITEM_COUNT, ITEM_MAX, Instrument, band_of, score
from api.journal.cursors import decode_cursor
from api.web.chart import NARROW, WIDE, MoodReading, mood_chart
from api.web.local_time import UTC_TIME, local_time, patient_time
from api.web.timeline import Item, KindPage, merge

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


def test_one_point_per_reading_in_the_window_in_time_order() -> None:
    readings = [
        MoodReading(at=START + timedelta(days=3), mood=4),
        MoodReading(at=START, mood=10),
        MoodReading(at=END, mood=0),
        MoodReading(at=START - timedelta(seconds=1), mood=5),  # before the window
        MoodReading(at=END + timedelta(seconds=1), mood=5),  # after it
    ]
    chart = mood_chart(readings, [], start=START, end=END, clock=UTC_TIME)
    for frame, drawing in ((WIDE, chart.wide), (NARROW, chart.narrow)):
        assert [p.mood for p in drawing.points] == [10, 4, 0]
        assert drawing.points[0].x == frame.left
        assert drawing.points[-1].x == frame.width - frame.right
        assert drawing.points[0].y == frame.top  # mood 10 at the top
        assert drawing.points[-1].y == drawing.bottom  # mood 0 at the bottom
        assert drawing.line.split(" ")[0] == f"{frame.left}.0,{frame.top}.0"
        assert (drawing.width, drawing.height) == (frame.width, frame.height)
    # On a phone the drawing is taller than it is wide; on a laptop, wide.
    assert NARROW.height / NARROW.width > 0.9 > WIDE.height / WIDE.width
    assert "3 mood check-ins" in chart.description
    assert (
        "lowest 0 on Tue 1 Dec, highest 10 on Sun 1 Nov, latest 0 on Tue 1 Dec."
        in chart.description
    )
    assert [(row.day, row.time, row.mood) for row in chart.rows] == [
        ("Sun 1 Nov 2026", "00:00", 10),
        ("Wed 4 Nov 2026", "00:00", 4),
        ("Tue 1 Dec 2026", "00:00", 0),
    ]


def test_dosing_sessions_in_the_window_are_marked() -> None:
    dosing = [START + timedelta(days=15), START - timedelta(days=1)]
    chart = mood_chart([], dosing, start=START, end=END, clock=UTC_TIME)
    plot_width = WIDE.width - WIDE.left - WIDE.right
    assert [m.x for m in chart.wide.markers] == [WIDE.left + plot_width / 2]
    assert "No mood check-ins from 1 Nov to 1 Dec 2026 (UTC)." in chart.description
    assert (
        "Dosing session 1 of 1, Mon 16 Nov at 00:00: no check-ins in the 72 hours before, "
        "no check-ins in the 72 hours after." in chart.description
    )
    assert [(row.day, row.mood, row.dosing) for row in chart.rows] == [
        ("Mon 16 Nov 2026", None, True)
    ]


def test_the_words_give_the_mood_around_each_session() -> None:
    # The oracle: the means of the check-ins in [at - 72 h, at) and (at, at + 72 h], by hand.
    at = START + timedelta(days=10, hours=10)
    readings = [
        MoodReading(at - timedelta(hours=73), 9),  # outside the window before
        MoodReading(at - timedelta(hours=72), 2),
        MoodReading(at - timedelta(hours=1), 4),
        MoodReading(at, 10),  # the session's own instant: in neither window
        MoodReading(at + timedelta(hours=20), 6),
        MoodReading(at + timedelta(hours=72), 7),
    ]
    chart = mood_chart(readings, [at], start=START, end=END, clock=UTC_TIME)
    assert chart.sentences[1] == (
        "Dosing session 1 of 1, Wed 11 Nov at 10:00: a mean mood of 3.0 in the 72 hours before, "
        "a mean mood of 6.5 in the 72 hours after (up 3.5)."
    )
    assert "lowest 2 on Sun 8 Nov, highest 10 on Wed 11 Nov" in chart.sentences[0]


def test_days_are_the_patients_own() -> None:
    # 21:30 in Chicago on 9 Nov is 03:30 UTC on the 10th: the chart, its table and its ticks
    # put it on the 9th, and name the zone.
    chicago = local_time("America/Chicago")
    at = datetime(2026, 11, 10, 3, 30, tzinfo=UTC)
    chart = mood_chart([MoodReading(at, 5)], [], start=START, end=END, clock=chicago)
    assert [(row.day, row.time) for row in chart.rows] == [("Mon 9 Nov 2026", "21:30")]
    assert chart.zone == "America/Chicago"
    assert "on Mon 9 Nov" in chart.description
    assert "(America/Chicago)" in chart.description
    assert chicago.when(at) == "Mon 9 Nov 2026, 21:30 America/Chicago"
    assert chicago.day(at) == "9 Nov 2026 (America/Chicago)"
    # The last tick is the start of the last local day, 06:00 UTC in Chicago's winter.
    last = chart.wide.day_ticks[-1]
    assert last.label == "30 Nov"
    assert UTC_TIME.day(at) == "10 Nov 2026 (UTC)"


class Patient:
    def __init__(self, time_zone: object) -> None:
        self.time_zone = time_zone


@pytest.mark.parametrize(
    ("account", "name"),
    [
        (Patient("Europe/Berlin"), "Europe/Berlin"),
        (Patient("America/New_York"), "America/New_York"),
        (Patient(None), "UTC"),
        (Patient(""), "UTC"),
        (Patient("Not/A_Zone"), "UTC"),
        (Patient("../../etc/passwd"), "UTC"),
        (Patient(7), "UTC"),
        (object(), "UTC"),  # an account without the column
        (None, "UTC"),
    ],
)
def test_the_zone_shown_for_a_patient(account: object, name: str) -> None:
    assert patient_time(account).name == name


def test_a_day_across_a_change_of_clocks_is_still_one_day() -> None:
    berlin = local_time("Europe/Berlin")
    # Clocks went back on 25 Oct 2026 in Berlin: that day had 25 hours.
    at = datetime(2026, 10, 26, 12, tzinfo=UTC)
    start = berlin.days_before(at, 1)
    assert start.isoformat() == "2026-10-25T00:00:00+02:00"
    assert berlin.midnight(at).astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert UTC_TIME.label == "UTC"
    assert local_time("America/New_York").label == "America/New York"


def test_day_ticks_end_on_the_last_day_and_go_back_by_weeks() -> None:
    chart = mood_chart([], [], start=START, end=END, clock=UTC_TIME)
    assert [tick.label for tick in chart.wide.day_ticks] == [
        "3 Nov",
        "10 Nov",
        "17 Nov",
        "24 Nov",
        "1 Dec",
    ]
    assert [tick.label for tick in chart.wide.mood_ticks] == ["0", "5", "10"]
    # On a phone's narrower drawing, a label every other week, the last day's kept.
    assert [tick.label for tick in chart.narrow.day_ticks] == ["3 Nov", "", "17 Nov", "", "1 Dec"]


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="must end after"):
        mood_chart([], [], start=END, end=START, clock=UTC_TIME)


def item(kind: str, minutes: int, entry_id: uuid.UUID | None = None) -> Item:
    at = START + timedelta(minutes=minutes)
    return Item(kind=kind, at=at, id=entry_id or uuid.uuid4(), entry=None)


def test_merge_takes_the_newest_across_kinds() -> None:
    checkins = [item("checkins", m) for m in (50, 30, 10)]
    reflections = [item("reflections", m) for m in (40, 20)]
    timeline = merge(
        [KindPage("checkins", checkins, more=False), KindPage("reflections", reflections, False)],
        limit=3,
    )
    assert [i.at.minute for i in timeline.items] == [50, 40, 30]
    assert timeline.older is not None
    assert decode_cursor(timeline.older) == (checkins[1].at, checkins[1].id)


def test_merge_breaks_ties_by_id_and_ends_without_a_cursor() -> None:
    low, high = uuid.UUID(int=1), uuid.UUID(int=2)
    timeline = merge(
        [
            KindPage("intentions", [item("intentions", 5, low)], more=False),
            KindPage("sessions", [item("sessions", 5, high)], more=False),
        ],
        limit=10,
    )
    assert [i.id for i in timeline.items] == [high, low]
    assert timeline.older is None


def test_a_kind_with_more_keeps_the_cursor_even_when_all_fit() -> None:
    page = KindPage("checkins", [item("checkins", 9), item("checkins", 8)], more=True)
    timeline = merge([page], limit=2)
    assert timeline.older is not None
    assert merge([KindPage("checkins", [], more=False)], limit=2).older is None


@pytest.mark.parametrize(
    ("instrument", "answers"),
    [
        (Instrument.PHQ9, [0] * 9),
        (Instrument.PHQ9, [1] * 9),
        (Instrument.PHQ9, [2] * 9),
        (Instrument.PHQ9, [3] * 9),
        (Instrument.GAD7, [2] * 7),
        (Instrument.PCL5, [1] * 20),
        (Instrument.PCL5, [2] * 20),
    ],
)
def test_band_of_a_total_is_the_band_scoring_gives(
    instrument: Instrument, answers: list[int]
) -> None:
    scored = score(instrument, answers)
    assert band_of(instrument, scored.total) == scored.band


@pytest.mark.parametrize("instrument", list(Instrument))
def test_band_of_every_possible_total_is_the_band_scoring_gives(instrument: Instrument) -> None:
    # Every total, the band edges (PCL-5's 33 among them) included; scoring is the oracle.
    items, top = ITEM_COUNT[instrument], ITEM_MAX[instrument]
    for total in range(items * top + 1):
        answers = [min(top, max(0, total - top * i)) for i in range(items)]
        assert sum(answers) == total
        assert band_of(instrument, total) == score(instrument, answers).band, total
