"""The mood chart's geometry: check-ins and dosing sessions placed on an SVG canvas. Pure.

The template draws what this computes (``templates/_chart.html``): one circle per check-in, a
line through them in time order, and a dashed vertical line at each dosing session. Nothing is
drawn by a script, and nothing is styled inline: colours come from the stylesheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.summary.calculations import MOOD_MAX, MOOD_MIN

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 40, 16, 24, 36
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM


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
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float  # x of the plot's right edge
    top: int
    bottom: float  # y of the plot's bottom edge
    points: list[Point]
    line: str  # the polyline's points attribute
    markers: list[Marker]
    mood_ticks: list[Tick]
    day_ticks: list[Tick]
    description: str


def _day(at: datetime) -> str:
    return f"{at.day} {at:%b}"


def mood_chart(
    readings: Sequence[MoodReading],
    dosing: Sequence[datetime],
    *,
    start: datetime,
    end: datetime,
) -> Chart:
    """Readings and dosing times between ``start`` and ``end`` (others are left out)."""
    span = (end - start).total_seconds()
    if span <= 0:
        raise ValueError("the chart's window must end after it starts")

    def x_of(at: datetime) -> float:
        return round(LEFT + (at - start).total_seconds() / span * PLOT_WIDTH, 1)

    def y_of(mood: float) -> float:
        return round(TOP + (MOOD_MAX - mood) / (MOOD_MAX - MOOD_MIN) * PLOT_HEIGHT, 1)

    shown = sorted((r for r in readings if start <= r.at <= end), key=lambda r: r.at)
    points = [Point(x=x_of(r.at), y=y_of(r.mood), mood=r.mood, at=r.at) for r in shown]
    markers = [Marker(x=x_of(at), at=at) for at in sorted(dosing) if start <= at <= end]
    # A tick at the start of the last day, and every week before it.
    last_day = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    weeks = int((last_day - start) / timedelta(days=7))
    days = [last_day - timedelta(days=7 * n) for n in range(weeks, -1, -1)]
    day_ticks = [Tick(at=x_of(day), label=_day(day)) for day in days if day >= start]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        points=points,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        markers=markers,
        mood_ticks=[Tick(at=y_of(mood), label=str(mood)) for mood in (0, 5, 10)],
        day_ticks=day_ticks,
        description=_describe(shown, [m.at for m in markers], start, end),
    )


def _describe(
    readings: Sequence[MoodReading], dosing: Sequence[datetime], start: datetime, end: datetime
) -> str:
    """The chart in words, for screen readers: what a sighted reader takes from it."""
    window = f"from {_day(start)} to {_day(end)} {end:%Y}"
    if not readings:
        text = f"No mood check-ins {window}."
    else:
        moods = [r.mood for r in readings]
        count = f"{len(readings)} mood check-in{'s' if len(readings) != 1 else ''}"
        text = (
            f"{count} {window}, on a scale of 0 to 10: lowest {min(moods)}, highest "
            f"{max(moods)}, latest {moods[-1]}."
        )
    if dosing:
        text += " Dosing sessions, drawn as dashed lines: " + ", ".join(map(_day, dosing)) + "."
    return text
