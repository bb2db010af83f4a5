"""Create, read, list, edit and delete any journal resource, within a scope.

The rule for edits and deletes, the same on PATCH and DELETE and on sync: a write names the
version it was made against (``If-Match``, or a sync operation's ``if_match``).

- Made against the current version: applied.
- Made against an older version, and an edit whose every field already holds the value sent:
  nothing to do (a resend whose answer was lost, or the same edit made twice); answered as
  applied, with nothing written twice.
- Otherwise made against an older version: a conflict, and nothing is written. The answer carries
  the entry as it is now, so the app can show both and let the patient choose: a delete never
  discards an edit made after the version it saw, and the last edit to arrive never silently
  overwrites one it did not see.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api import paging
from api.errors import Conflict, NotFound, PreconditionFailed
from api.journal.cursors import encode_cursor
from api.journal.repository import Entry, EntryRepository, EntryRow, PageRequest, Scope
from api.journal.resource import Leniency, Resource, WriteContext
from api.journal.schemas import EntryCreate, EntryUpdate
from api.models import JournalEntry
from api.models.base import utcnow
from api.preconditions import require_match

ID_TAKEN = "This id is already taken: resend exactly the same body to replay, or use a new UUID."
STALE = "The entry has changed since you read it: read it again and retry."


def _repository(
    session: AsyncSession, resource: Resource, scope: Scope
) -> EntryRepository[JournalEntry]:
    return EntryRepository(session, resource.model, scope)


class IdTaken(Conflict):
    """A create whose id is in use with another body: by an entry of this owner's (``existing``),
    by one deleted, or by someone else's (``existing`` None for both: they look the same)."""

    def __init__(self, existing: JournalEntry | None) -> None:
        super().__init__(ID_TAKEN)
        self.existing = existing


class StaleEntry(PreconditionFailed):
    """An edit or delete made against an older version: nothing written. ``entry`` is the entry
    as it is now; the routes add it to the problem as ``current``."""

    def __init__(self, entry: JournalEntry) -> None:
        super().__init__(STALE)
        self.entry = entry


def _not_found(resource: Resource) -> NotFound:
    # The same answer for an id that never existed, was deleted, or belongs to someone else.
    return NotFound(f"No {resource.noun} with this id.")


def same_as_stored(resource: Resource, stored: JournalEntry, data: EntryCreate) -> bool:
    sent = data.model_dump(exclude_unset=True, exclude={"id"})
    as_created = resource.create.model_validate(stored, from_attributes=True)
    return as_created.model_dump(include=set(sent)) == sent


@dataclass(frozen=True)
class NewEntry:
    """A create made ready to write: its id, its values as the resource prepared them, its time."""

    id: uuid.UUID
    values: dict[str, Any]
    now: datetime
    context: WriteContext


async def create(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    data: EntryCreate,
    leniency: Leniency | None = None,
) -> tuple[Entry, bool]:
    """Returns the entry and whether this was a replay of an earlier create.

    The one way an entry comes to exist, for the resource's POST and for sync alike: whatever
    must happen when an entry arrives happens here (``api.journal.creates`` writes the same in
    one statement, for the resources that need nothing more than the row)."""
    new = await prepare_create(session, resource, scope, data, leniency)
    created = await _repository(session, resource, scope).add(new.id, new.values, new.now)
    if created is not None:
        if resource.created is not None:
            await resource.created(new.context, created)
        return created, False
    return await already_there(session, resource, scope, new.id, data), True


async def prepare_create(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    data: EntryCreate,
    leniency: Leniency | None = None,
) -> NewEntry:
    """The values of a create, prepared by its resource (which may refuse them), not written."""
    now = utcnow()
    values = data.model_dump(exclude={"id"})
    if values.get(resource.time_column) is None:
        values[resource.time_column] = now
    _receipt_time(values, leniency, now)
    context = WriteContext(session, scope, now, None, leniency)
    values = await resource.prepare(context, values)
    return NewEntry(data.id or uuid.uuid4(), values, now, context)


async def already_there(
    session: AsyncSession, resource: Resource, scope: Scope, entry_id: uuid.UUID, data: EntryCreate
) -> JournalEntry:
    """A create whose id is taken: the stored entry when this is a resend of that very entry
    (answered as the first time was), else ``IdTaken``."""
    existing = await _repository(session, resource, scope).get(entry_id)
    if existing is not None and same_as_stored(resource, existing, data):
        return existing
    raise IdTaken(existing)


def _receipt_time(values: dict[str, Any], leniency: Leniency | None, now: datetime) -> None:
    """Times a sync found too far ahead become this write's own time, exactly, and are flagged."""
    if leniency is None or not leniency.clock_adjusted:
        return
    for name in leniency.clock_adjusted:
        values[name] = now
    values["clock_adjusted"] = True


def holds_already(resource: Resource, entry: JournalEntry, data: EntryUpdate) -> bool:
    """Whether every field ``data`` sets already holds the value sent (compared as the API
    shows them, so ``+01:00`` and ``Z`` times, or ids in any case, compare equal)."""
    sent = data.model_dump(mode="json", exclude_unset=True)
    shown = resource.read.model_validate(entry).model_dump(mode="json")
    return all(shown.get(name) == value for name, value in sent.items())


async def entry_or_none(
    session: AsyncSession, resource: Resource, scope: Scope, entry_id: uuid.UUID
) -> JournalEntry | None:
    return await _repository(session, resource, scope).get(entry_id)


async def get(
    session: AsyncSession, resource: Resource, scope: Scope, entry_id: uuid.UUID
) -> JournalEntry:
    entry = await entry_or_none(session, resource, scope, entry_id)
    if entry is None:
        raise _not_found(resource)
    return entry


async def page(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    request: PageRequest,
    cursor: str | None,
) -> tuple[list[EntryRow], str | None]:
    start = paging.after(cursor)
    if start is not None:
        request = dataclasses.replace(request, after=start)
    rows, more = await _repository(session, resource, scope).page(request)
    return rows, next_cursor(resource, rows, more)


def next_cursor(resource: Resource, rows: list[EntryRow], more: bool) -> str | None:
    """The cursor of the page after ``rows``: None when no more follow."""
    if not more:
        return None
    last = rows[-1]
    return encode_cursor(getattr(last, resource.time_column), last.id)


async def update(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry_id: uuid.UUID,
    data: EntryUpdate,
    if_match: str | None,
    leniency: Leniency | None = None,
) -> tuple[JournalEntry, bool]:
    """Apply an edit by the rule above; returns the entry and whether nothing needed doing."""
    entry = await _repository(session, resource, scope).get(entry_id)
    if entry is None:
        raise _not_found(resource)
    try:
        require_match(if_match, entry.version)
    except PreconditionFailed:
        if holds_already(resource, entry, data):
            return entry, True
        raise StaleEntry(entry) from None
    return await apply_update(session, resource, scope, entry, data, leniency), False


async def apply_update(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry: JournalEntry,
    data: EntryUpdate,
    leniency: Leniency | None = None,
) -> JournalEntry:
    """Write an edit to ``entry`` as loaded (its version decided on by the caller)."""
    context = WriteContext(session, scope, utcnow(), entry, leniency)
    values = data.changes()
    _receipt_time(values, leniency, context.now)
    values = await resource.prepare(context, values)
    updated = await _repository(session, resource, scope).update(entry, entry.version, values)
    if updated is None:
        raise StaleEntry(entry)
    return updated


async def delete(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry_id: uuid.UUID,
    if_match: str | None,
) -> None:
    repository = _repository(session, resource, scope)
    entry = await repository.get(entry_id)
    if entry is None:
        raise _not_found(resource)
    try:
        require_match(if_match, entry.version)
    except PreconditionFailed:
        raise StaleEntry(entry) from None
    await apply_delete(session, resource, scope, entry)


async def apply_delete(
    session: AsyncSession, resource: Resource, scope: Scope, entry: JournalEntry
) -> None:
    if not await _repository(session, resource, scope).delete(entry, entry.version, resource.name):
        raise StaleEntry(entry)
