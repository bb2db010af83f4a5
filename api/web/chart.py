"""The mood chart: check-ins and dosing sessions placed on an SVG canvas, and the same in words
and in a table. Pure.

The template draws what this computes (``templates/_chart.html``): one circle per check-in, a
line through them in time order, and a dashed vertical line at each dosing session. It is drawn
twice, on a wide canvas and on a taller, narrower one that a phone shows at about its own size
(so text keeps its size there), and the stylesheet shows one of them. Nothing is drawn by a
script, and nothing is styled inline: colours come from the stylesheet.

What the drawing shows is also given in a form that needs no eyes and no pointer: sentences
(count, range and when, the mood around each dosing session) and a table of every point.
Days are the patient's own (``LocalTime``), and the zone is named.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.summary import calculations as calc
from api.summary.calculations import MOOD_MAX, MOOD_MIN
from api.web.local_time import LocalTime


@dataclass(frozen=True)
class Frame:
    """A canvas: its size and the margins around the plot (room for the axes' labels)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    radius: float  # of a check-in's point
    label_weeks: int  # a day label every this many weekly ticks, counted back from the last


WIDE = Frame(720, 260, left=40, right=16, top=24, bottom=36, radius=4.5, label_weeks=1)
# Drawn at about 1:1 in a phone's 316 px content box: labels at their stylesheet size, so one
# every two weeks (weekly ones would run into each other).
NARROW = Frame(316, 300, left=30, right=12, top=24, bottom=36, radius=5, label_weeks=2)


@dataclass(frozen=True)
class MoodReading:
    at: datetime
    mood: int


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    mood: int
    at: datetime


@dataclass(frozen=True)
class Marker:
    x: float
    at: datetime


@dataclass(frozen=True)
class Tick:
    at: float  # x for the time axis, y for the mood axis
    label: str  # empty: a tick without a label


@dataclass(frozen=True)
class Drawing:
    """One canvas's geometry."""

    width: int
    height: int
    left: int
    right: float  # x of the plot's right edge
    top: int
    bottom: float  # y of the plot's bottom edge
    radius: float
    points: list[Point]
    line: str  # the polyline's points attribute
    markers: list[Marker]
    mood_ticks: list[Tick]
    day_ticks: list[Tick]


@dataclass(frozen=True)
class Row:
    """A line of the chart's data table: a check-in (with its mood) or a dosing session."""

    at: datetime
    day: str  # "Mon 2 Nov 2026", in the patient's zone
    time: str  # "09:07"
    mood: int | None  # None on a dosing session's line
    dosing: bool


@dataclass(frozen=True)
class Chart:
    wide: Drawing
    narrow: Drawing
    rows: list[Row]
    sentences: list[str]  # the chart in words: what a sighted reader takes from it
    zone: str  # the zone its days and times are in, as the page names it

    @property
    def description(self) -> str:
        return " ".join(self.sentences)


def _draw(
    frame: Frame,
    shown: Sequence[MoodReading],
    dosing: Sequence[datetime],
    days: Sequence[datetime],
    clock: LocalTime,
    start: datetime,
    end: datetime,
) -> Drawing:
    # In UTC: Python subtracts two times of the same zone by their clocks, not by elapsed time.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    span = (end - start).total_seconds()
    plot_width = frame.width - frame.left - frame.right
    plot_height = frame.height - frame.top - frame.bottom

    def x_of(at: datetime) -> float:
        elapsed = (at.astimezone(UTC) - start).total_seconds()
        return round(frame.left + elapsed / span * plot_width, 1)

    def y_of(mood: float) -> float:
        return round(frame.top + (MOOD_MAX - mood) / (MOOD_MAX - MOOD_MIN) * plot_height, 1)

    points = [Point(x=x_of(r.at), y=y_of(r.mood), mood=r.mood, at=r.at) for r in shown]
    return Drawing(
        width=frame.width,
        height=frame.height,
        left=frame.left,
        right=frame.width - frame.right,
        top=frame.top,
        bottom=frame.height - frame.bottom,
        radius=frame.radius,
        points=points,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        markers=[Marker(x=x_of(at), at=at) for at in dosing],
        mood_ticks=[Tick(at=y_of(mood), label=str(mood)) for mood in (0, 5, 10)],
        day_ticks=[
            Tick(
                at=x_of(day),
                label=clock.short_day(day) if (len(days) - 1 - n) % frame.label_weeks == 0 else "",
            )
            for n, day in enumerate(days)
        ],
    )


def mood_chart(
    readings: Sequence[MoodReading],
    dosing: Sequence[datetime],
    *,
    start: datetime,
    end: datetime,
    clock: LocalTime,
) -> Chart:
    """Readings and dosing times between ``start`` and ``end`` (others are left out), with days
    in ``clock``'s zone."""
    if (end - start).total_seconds() <= 0:
        raise ValueError("the chart's window must end after it starts")
    shown = sorted((r for r in readings if start <= r.at <= end), key=lambda r: r.at)
    sessions = sorted(at for at in dosing if start <= at <= end)
    # A tick at the start of the last day (in the patient's zone), and every week before it.
    last_day = clock.midnight(end)
    weeks = int((last_day - start) / timedelta(days=7))
    days = [clock.days_before(last_day, 7 * n) for n in range(weeks, -1, -1)]
    days = [day for day in days if day >= start]
    rows = sorted(
        [Row(r.at, clock.weekday(r.at), clock.clock(r.at), r.mood, False) for r in shown]
        + [Row(at, clock.weekday(at), clock.clock(at), None, True) for at in sessions],
        key=lambda row: (row.at, row.dosing),
    )
    return Chart(
        wide=_draw(WIDE, shown, sessions, days, clock, start, end),
        narrow=_draw(NARROW, shown, sessions, days, clock, start, end),
        rows=rows,
        sentences=_describe(shown, sessions, clock, start, end),
        zone=clock.label,
    )


def _on_days(readings: Sequence[MoodReading], clock: LocalTime) -> str:
    """ "on Mon 2 Nov", "on Mon 2 Nov and Fri 6 Nov", "5 times, first on Mon 2 Nov"."""
    days = list(dict.fromkeys(clock.weekday_short(r.at) for r in readings))
    if len(readings) > 3:
        return f"{len(readings)} times, first on {days[0]}"
    if len(days) == 1:
        return f"on {days[0]}"
    return f"on {', '.join(days[:-1])} and {days[-1]}"


def _mean(value: float | None) -> str:
    return "no check-ins" if value is None else f"a mean mood of {value:.1f}"


def _describe(
    readings: Sequence[MoodReading],
    dosing: Sequence[datetime],
    clock: LocalTime,
    start: datetime,
    end: datetime,
) -> list[str]:
    window = f"from {clock.short_day(start)} to {clock.day(end)}"
    if not readings:
        sentences = [f"No mood check-ins {window}."]
    else:
        moods = [r.mood for r in readings]
        low, high = min(moods), max(moods)
        count = f"{len(readings)} mood check-in{'s' if len(readings) != 1 else ''}"
        lowest = _on_days([r for r in readings if r.mood == low], clock)
        highest = _on_days([r for r in readings if r.mood == high], clock)
        sentences = [
            f"{count} {window}, on a scale of 0 to 10: lowest {low} {lowest}, highest {high} "
            f"{highest}, latest {moods[-1]} on {clock.weekday_short(readings[-1].at)}."
        ]
    # Around each session, the windows of the summary's "mood around dosing" (api.summary).
    around = calc.mood_around_dosing(
        [calc.MoodPoint(at=r.at, mood=r.mood) for r in readings],
        [calc.DosingPoint(id=uuid.UUID(int=n), at=at) for n, at in enumerate(dosing)],
    )
    for n, mood in enumerate(around, start=1):
        sentence = (
            f"Dosing session {n} of {len(around)}, {clock.weekday_short(mood.at)} at "
            f"{clock.clock(mood.at)}: {_mean(mood.before_72h)} in the 72 hours before, "
            f"{_mean(mood.after_72h)} in the 72 hours after"
        )
        if mood.before_72h is not None and mood.after_72h is not None:
            change = round(mood.after_72h - mood.before_72h, 1)
            if change > 0:
                sentence += f" (up {change:.1f})"
            elif change < 0:
                sentence += f" (down {-change:.1f})"
            else:
                sentence += " (no change)"
        sentences.append(sentence + ".")
    return sentences
