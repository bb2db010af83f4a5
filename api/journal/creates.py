"""A patient's create (POST) as one write: the answer made first, then the login's liveness, the
change number, the entry and the idempotency record written together (``api.journal.writes``:
one statement on PostgreSQL, the same steps one after the other on SQLite).

For the resources whose create needs nothing but the row (no ``created`` hook, no
``answer_create``: their answer is the entry as written, known before it is written). Every
answer is the one ``service.create`` under ``idempotency.once`` gives, after the same checks
in the same order: a dead login's 401 before any other refusal (``require_live``), an id in use
answered as a resend of that entry or 409, a key taken first answered as the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.dependencies import PATIENTS_ONLY, REVOKED, Caller, require_live
from api.errors import Forbidden, ProblemError, Unauthorized
from api.journal import idempotency, service
from api.journal.repository import Entry, EntryRepository, Scope
from api.journal.resource import Resource
from api.journal.schemas import EntryCreate
from api.journal.writes import EntryWrite, write
from api.models import Role
from api.models.base import UTCDateTime, table_of

# The answer to a create: the entry and whether it was a replay of an earlier one.
Answer = Callable[[Entry, bool], Response]


def in_one_write(resource: Resource) -> bool:
    """Whether a create of ``resource`` is written by ``create`` below."""
    return resource.created is None and resource.answer_create is None


async def create(
    session: AsyncSession,
    resource: Resource,
    caller: Caller,
    data: EntryCreate,
    key: str | None,
    fingerprint: bytes,
    answer: Answer,
) -> Response:
    """The answer to a patient's create, everything written in one go (see the module)."""
    scope = Scope.own(caller.id)
    try:
        if key is not None:
            idempotency.check_key(key)
        new = await service.prepare_create(session, resource, scope, data)
    except ProblemError:
        await require_live(session, caller)
        raise
    entries = EntryRepository(session, resource.model, scope)
    row = entries.new_row(new.id, new.values, new.now)
    response = answer(entries.as_written(_as_stored(resource, row), new.values), False)
    record = (
        None
        if key is None
        else idempotency.record_values(session, caller.id, key, fingerprint, response)
    )
    connection = await session.connection()
    outcome = await write(
        connection, EntryWrite(resource.model, caller.id, caller.login_id, row, record)
    )
    if outcome.role is None:
        raise Unauthorized(REVOKED)
    if outcome.role is not Role.PATIENT:
        raise Forbidden(PATIENTS_ONLY)
    if outcome.entry is None:
        # The id is in use (its number taken, as ``service.create`` takes it): a resend of this
        # very entry is answered as the first time was, and recorded under the key as then.
        async def again() -> Response:
            existing = await service.already_there(session, resource, scope, new.id, data)
            return answer(existing, True)

        return await idempotency.once(session, caller.id, key, fingerprint, again)
    if outcome.recorded is False and key is not None:
        return await idempotency.taken_first(session, caller.id, key, fingerprint)
    return response


def _as_stored(resource: Resource, row: dict[str, Any]) -> dict[str, Any]:
    """The row as the database hands it back: its times in UTC."""
    stored = dict(row)
    for column in table_of(resource.model).c:
        value = stored.get(column.key)
        if isinstance(column.type, UTCDateTime) and value is not None:
            stored[column.key] = value.astimezone(UTC)
    return stored
