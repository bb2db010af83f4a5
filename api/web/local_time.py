"""Dates and times as the patient lives them: in the zone of the patient's account, named. Pure.

A check-in at 21:30 in Chicago is 03:30 UTC the next day; shown in UTC it reads as the morning
after, which can be the dosing day. So every date and time of a patient is shown in the patient's
own zone (the account's IANA ``time_zone``; UTC for an account that has none), with the zone
named next to it, day-only dates included, and days are counted in that zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_NAME = "UTC"


@dataclass(frozen=True)
class LocalTime:
    """One zone, and how the pages write an instant in it."""

    zone: tzinfo
    name: str  # the IANA name: "America/Chicago"

    @property
    def label(self) -> str:
        """The zone as the pages name it: the IANA name, which no two zones share (unlike "CST"),
        with underscores as spaces ("America/New York")."""
        return self.name.replace("_", " ")

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def when(self, at: datetime) -> str:
        """ "Sun 29 Nov 2026, 21:30 America/Chicago"."""
        local = self.local(at)
        return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {self.label}"

    def day(self, at: datetime) -> str:
        """ "29 Nov 2026 (America/Chicago)": the day in the zone, the zone named."""
        local = self.local(at)
        return f"{local.day} {local:%b %Y} ({self.label})"

    def weekday(self, at: datetime) -> str:
        """ "Sun 29 Nov 2026", for places that name the zone once nearby (a heading, a table
        whose caption names it)."""
        local = self.local(at)
        return f"{local:%a} {local.day} {local:%b %Y}"

    def weekday_short(self, at: datetime) -> str:
        """ "Sun 29 Nov", in sentences that name the year and the zone once."""
        local = self.local(at)
        return f"{local:%a} {local.day} {local:%b}"

    def short_day(self, at: datetime) -> str:
        """ "29 Nov", for chart ticks (the axis names the zone)."""
        local = self.local(at)
        return f"{local.day} {local:%b}"

    def clock(self, at: datetime) -> str:
        """ "21:30" (the zone named nearby)."""
        return f"{self.local(at):%H:%M}"

    def midnight(self, at: datetime) -> datetime:
        """The start of ``at``'s day in the zone (as an aware time in the zone)."""
        local = self.local(at)
        return datetime(local.year, local.month, local.day, tzinfo=self.zone)

    def days_before(self, at: datetime, days: int) -> datetime:
        """The start of the day ``days`` calendar days before ``at``'s, in the zone: a day
        across a change of clocks is 23 or 25 hours, and still one day."""
        start = self.midnight(at).date() - timedelta(days=days)
        return datetime(start.year, start.month, start.day, tzinfo=self.zone)


UTC_TIME = LocalTime(UTC, UTC_NAME)


def ago(at: datetime, now: datetime) -> str:
    """How long before ``now`` ``at`` was, in words a glance takes in: "3 days ago". Whole units,
    rounded down; the same in every zone."""
    seconds = max(0, int((now - at).total_seconds()))
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def local_time(name: str | None) -> LocalTime:
    """The zone an IANA name names; UTC for none, or for a name this machine does not know (the
    API only stores names it knows, but the zone database can change under a stored name)."""
    if not name or name == UTC_NAME:
        return UTC_TIME
    try:
        return LocalTime(ZoneInfo(name), name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_TIME


def patient_time(account: object | None) -> LocalTime:
    """The zone to show a patient's dates and times in: the account's ``time_zone`` when it has
    one, else UTC. Read with ``getattr`` so that it works on accounts with or without the
    column."""
    name = getattr(account, "time_zone", None)
    return local_time(name if isinstance(name, str) else None)
