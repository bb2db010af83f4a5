"""A clock the test sets: the service reads the time through ``api.models.base.utcnow``, and the
``clock`` fixture puts this one in its place for the test, so a boundary is reached exactly and
an expiry is passed without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.models import base


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at

    def move(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The service's clock, pinned at a whole second of the present until the test moves it."""
    pinned = Clock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(base, "clock", pinned)
    return pinned
