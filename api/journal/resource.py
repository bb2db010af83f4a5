"""A journal resource described once: its model, its schemas and its write rules.

The endpoints (``api.journal.endpoints``), the sync feed and the summary all work from these
descriptions, so the five kinds of entry behave the same way by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.journal.repository import Entry, Scope
from api.journal.schemas import EntryCreate, EntryRead, EntryUpdate
from api.models import JournalEntry
from api.settings import Settings


@dataclass
class Leniency:
    """How a sync writes what a live request would refuse, because a phone cannot fix it: a
    reference to an entry that went away is cleared, a time from a clock running ahead is taken
    as the receipt time. What was done is told in ``notes``."""

    notes: list[str] = field(default_factory=list)
    clock_adjusted: list[str] = field(default_factory=list)  # the fields whose time was replaced


@dataclass(frozen=True)
class WriteContext:
    session: AsyncSession
    scope: Scope
    now: datetime
    existing: JournalEntry | None  # None on create
    leniency: Leniency | None = None  # None: refuse (a live request)


async def no_preparation(_context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    return values


def plain_presentation(resource: Resource, entry: Entry, _settings: Settings) -> EntryRead:
    return resource.read.model_validate(entry)


@dataclass(frozen=True)
class Resource:
    name: str  # the path segment and the sync group: "checkins"
    singular: str  # for operation ids: "checkin"
    noun: str  # for people: "mood check-in"
    model: type[JournalEntry]
    create: type[EntryCreate]
    update: type[EntryUpdate] | None  # None: never edited once written
    read: type[EntryRead]
    # Checks references and fills server-side fields; raises a ProblemError to refuse.
    prepare: Callable[[WriteContext, dict[str, Any]], Awaitable[dict[str, Any]]] = no_preparation
    present: Callable[[Resource, Entry, Settings], EntryRead] = plain_presentation
    # After a new entry is stored (never on a replay): records that follow from it, such as a
    # safety flag. Called by ``api.journal.service.create``, the one create path of the API and
    # of sync alike, so no way in can skip it.
    created: Callable[[WriteContext, Entry], Awaitable[None]] | None = None
    # What the answer to the patient's own POST adds to the presentation (a replay included).
    answer_create: (
        Callable[[AsyncSession, Scope, Entry, EntryRead], Awaitable[EntryRead]] | None
    ) = None
    session_linked: bool = False

    @property
    def a_noun(self) -> str:
        """The noun with its article, for summaries: "an intention", "a reflection"."""
        return f"{'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun}"

    @property
    def time_column(self) -> str:
        return self.model.time_column
