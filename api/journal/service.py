"""Create, read, list, edit and delete any journal resource, within a scope."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from api.journal.cursors import InvalidCursor, decode_cursor, encode_cursor
from api.journal.repository import Entry, EntryRepository, EntryRow, PageRequest, Scope
from api.journal.resource import Resource, WriteContext
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


def _not_found(resource: Resource) -> NotFound:
    # The same answer for an id that never existed, was deleted, or belongs to someone else.
    return NotFound(f"No {resource.noun} with this id.")


def _same_as_stored(resource: Resource, stored: JournalEntry, data: EntryCreate) -> bool:
    sent = data.model_dump(exclude_unset=True, exclude={"id"})
    as_created = resource.create.model_validate(stored, from_attributes=True)
    return as_created.model_dump(include=set(sent)) == sent


async def create(
    session: AsyncSession, resource: Resource, scope: Scope, data: EntryCreate
) -> tuple[Entry, bool]:
    """Returns the entry and whether this was a replay of an earlier create."""
    repository = _repository(session, resource, scope)
    entry_id = data.id or uuid.uuid4()
    now = utcnow()
    values = data.model_dump(exclude={"id"})
    if values.get(resource.time_column) is None:
        values[resource.time_column] = now
    context = WriteContext(session, scope, now, None)
    values = await resource.prepare(context, values)
    created = await repository.add(entry_id, values, now)
    if created is not None:
        if resource.created is not None:
            await resource.created(context, created)
        return created, False
    # The id is taken: a resend of this very entry is answered as the first time was.
    existing = await repository.get(entry_id)
    if existing is not None and _same_as_stored(resource, existing, data):
        return existing, True
    raise Conflict(ID_TAKEN)


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
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except InvalidCursor:
            raise BadRequest(
                "`cursor` is not valid: pass the `next_cursor` of the previous page."
            ) from None
        request = PageRequest(
            limit=request.limit,
            after=after,
            since=request.since,
            until=request.until,
            session_id=request.session_id,
        )
    rows, more = await _repository(session, resource, scope).page(request)
    if not more:
        return rows, None
    last = rows[-1]
    return rows, encode_cursor(getattr(last, resource.time_column), last.id)


async def update(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry_id: uuid.UUID,
    data: EntryUpdate,
    if_match: str | None,
) -> JournalEntry:
    repository = _repository(session, resource, scope)
    entry = await repository.get(entry_id)
    if entry is None:
        raise _not_found(resource)
    require_match(if_match, entry.version)
    values = await resource.prepare(WriteContext(session, scope, utcnow(), entry), data.changes())
    updated = await repository.update(entry, entry.version, values)
    if updated is None:
        raise PreconditionFailed(STALE)
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
    require_match(if_match, entry.version)
    if not await repository.delete(entry, entry.version, resource.name):
        raise PreconditionFailed(STALE)
