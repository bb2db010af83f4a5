"""The web view's pure parts: the chart's geometry, the timeline's merge, bands by total."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.assessments.scoring import ITEM_COUNT, ITEM_MAX, Instrument, band_of, score
from api.journal.cursors import decode_cursor
from api.web.chart import HEIGHT, LEFT, PLOT_WIDTH, TOP, WIDTH, MoodReading, mood_chart
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
    chart = mood_chart(readings, [], start=START, end=END)
    assert [p.mood for p in chart.points] == [10, 4, 0]
    assert chart.points[0].x == LEFT
    assert chart.points[-1].x == LEFT + PLOT_WIDTH
    assert chart.points[0].y == TOP  # mood 10 at the top
    assert chart.points[-1].y == chart.bottom  # mood 0 at the bottom
    assert chart.line.split(" ")[0] == f"{LEFT}.0,{TOP}.0"
    assert (chart.width, chart.height) == (WIDTH, HEIGHT)
    assert "3 mood check-ins" in chart.description
    assert "lowest 0, highest 10, latest 0" in chart.description


def test_dosing_sessions_in_the_window_are_marked() -> None:
    dosing = [START + timedelta(days=15), START - timedelta(days=1)]
    chart = mood_chart([], dosing, start=START, end=END)
    assert [m.x for m in chart.markers] == [LEFT + PLOT_WIDTH / 2]
    assert "No mood check-ins" in chart.description
    assert "Dosing sessions, drawn as dashed lines: 16 Nov." in chart.description


def test_day_ticks_end_on_the_last_day_and_go_back_by_weeks() -> None:
    chart = mood_chart([], [], start=START, end=END)
    assert [tick.label for tick in chart.day_ticks] == [
        "3 Nov",
        "10 Nov",
        "17 Nov",
        "24 Nov",
        "1 Dec",
    ]
    assert [tick.label for tick in chart.mood_ticks] == ["0", "5", "10"]


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="must end after"):
        mood_chart([], [], start=END, end=START)


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
