"""A journal resource described once: its names, its model, its schemas, its write rules and how
it is presented.

The endpoints (``api.journal.endpoints``), the sync feed and schemas, the export, the audit
wording, the web page and the spec's tags all work from these descriptions (listed in
``api.resources``), so the kinds of entry behave the same way by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.journal.repository import Entry, Scope
from api.journal.schemas import EntryCreate, EntryRead, EntryUpdate
from api.models import JournalEntry, ReadScope
from api.models.journal import SessionLinked
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
    name: str  # the path segment, the tag, the sync and export group: "checkins"
    singular: str  # for operation ids: "checkin"
    noun: str  # in the spec's words: "mood check-in"
    nouns: str  # for people, in the access log and on the web page: "mood check-ins"
    label: str  # the web page's heading for one entry: "Check-in"
    description: str  # the spec's tag description
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

    def __post_init__(self) -> None:
        self.scope  # noqa: B018 - a kind without its read scope fails here, at import

    @property
    def scope(self) -> ReadScope:
        """The read scope a therapist needs: "checkins:read"."""
        return ReadScope(f"{self.name}:read")

    @property
    def session_linked(self) -> bool:
        """Whether entries can name a dosing session (and be listed by one)."""
        return issubclass(self.model, SessionLinked)

    @property
    def example(self) -> dict[str, Any]:
        """The read schema's first example, for the examples of the schemas that group kinds."""
        extra = self.read.model_config.get("json_schema_extra")
        assert isinstance(extra, dict), f"{self.read.__name__} has no examples"
        examples = extra["examples"]
        assert isinstance(examples, list)
        first = examples[0]
        assert isinstance(first, dict)
        return first

    @property
    def a_noun(self) -> str:
        """The noun with its article, for summaries: "an intention", "a reflection"."""
        return f"{'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun}"

    @property
    def time_column(self) -> str:
        return self.model.time_column
