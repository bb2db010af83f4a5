"""A therapist's page of shared entries as one read: the live grant, the page and its audit
record, in one statement on PostgreSQL and as separate steps elsewhere.

``read`` runs a ``SharedRead`` on the request's connection. On PostgreSQL (where a read runs in
autocommit, ``api.database``) it is one statement: the grant checked live as
``api.grants.repository.grant_is_live`` checks it (a CTE), the page as the patient's own list
reads it but for private entries (``visible_to``), and the ``allowed`` audit record naming the
entries of the page, written only when the grant is live (a data-modifying CTE), so the page and
its record commit together or not at all. On SQLite the same steps run one after the other, in
the request's transaction. Either way a grant that is not live reads nothing and writes nothing:
``shared_page`` then takes the checks' own path (``api.patients.access.open_read``), which
refuses, and records the refusal, exactly as every other door does.

Only the common request is read this way: the grant's own patient, a scope the grant carries,
no ``session_id`` filter. Anything else goes through ``open_read`` and the page as before.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sqlalchemy import (
    Select,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from api import paging
from api.audit.repository import APPEND, audit_values
from api.auth.dependencies import TokensDep
from api.errors import FIRST_CHECK, ProblemError
from api.grants.repository import LIVE_GRANT, live_grant_values
from api.journal import service
from api.journal.pages import PageQuery, page_model, read_page
from api.journal.references import hide_unseen_references
from api.journal.repository import EntryRepository, PageRequest, Scope, entry_rows, page_statement
from api.journal.resource import Resource
from api.models import AuditOutcome, AuditRecord, JournalEntry
from api.models.base import table_of, utcnow
from api.patients.access import Reader, open_read, read_bearer, token_reader
from api.settings import Settings


@dataclass(frozen=True)
class SharedRead:
    """One page of a patient's shared entries as a reader asks for it: ``page`` without a
    ``session_id``; ``audit`` the ``allowed`` record's values as ``api.audit.repository`` binds
    them, but for the entries read and their count, which the read fills in."""

    model: type[JournalEntry]
    reader: Reader
    page: PageRequest
    audit: dict[str, Any]
    now: datetime


@dataclass(frozen=True)
class SharedRows:
    """``live`` False: the grant (or the login or token it rides on) is over, and nothing was
    read or written. ``rows``: the page as stored (sealed), newest first, up to its limit and one
    more (to tell whether more follow); the audit record names the first ``limit`` of them."""

    live: bool
    rows: list[dict[str, Any]]


async def read(connection: AsyncConnection, shared: SharedRead) -> SharedRows:
    """The read, in one statement where the database allows it (see the module)."""
    if connection.dialect.name == "postgresql":
        return await in_one_statement(connection, shared)
    return await in_steps(connection, shared)


def _live_values(shared: SharedRead) -> dict[str, Any]:
    reader = shared.reader
    return live_grant_values(
        reader.grant_id,
        reader.therapist_id,
        reader.patient_id,
        reader.login_id,
        reader.jti,
        shared.now,
    )


def _page_of(shared: SharedRead) -> Select[Any]:
    return page_statement(shared.model, False, **shared.page.filters())


async def in_steps(connection: AsyncConnection, shared: SharedRead) -> SharedRows:
    """The steps as separate statements, in the connection's transaction."""
    live = await connection.execute(LIVE_GRANT, _live_values(shared))
    if live.first() is None:
        return SharedRows(live=False, rows=[])
    found = await connection.execute(_page_of(shared), shared.page.params(shared.reader.patient_id))
    rows = [dict(row) for row in found.mappings()]
    ids = [str(row["id"]) for row in rows[: shared.page.limit]]
    await connection.execute(
        APPEND, {**shared.audit, "audit_entry_ids": ids, "audit_count": len(ids)}
    )
    return SharedRows(live=True, rows=rows)


async def in_one_statement(connection: AsyncConnection, shared: SharedRead) -> SharedRows:
    """The steps as one statement: the live grant a CTE, the page a CTE read only when it is
    live, the audit record a data-modifying CTE written only then (PostgreSQL)."""
    page = shared.page
    statement = _one_statement(shared.model, **page.filters())
    params = {
        **_live_values(shared),
        **shared.page.params(shared.reader.patient_id),
        **{key: value for key, value in shared.audit.items() if key not in _FILLED},
        "page_limit": page.limit,
    }
    found = (await connection.execute(statement, params)).all()
    # Each row: whether the grant is live, the audit record's id, then the entry's columns.
    if not found or not found[0][0]:
        return SharedRows(live=False, rows=[])
    return SharedRows(live=True, rows=entry_rows(found, shared.model, 2))


_AUDIT = table_of(AuditRecord)
# What the read fills in of the audit record: the entries it read, and how many.
_FILLED = frozenset({"audit_entry_ids", "audit_count"})


@functools.cache
def _one_statement(
    model: type[JournalEntry], *, since: bool, until: bool, by_session: bool, after: bool
) -> Select[Any]:
    """Built once per resource and set of filters."""
    live = LIVE_GRANT.cte("live")
    page = (
        page_statement(model, False, since=since, until=until, by_session=by_session, after=after)
        .where(exists(select(live.c.id)))
        .cte("page")
    )
    time = model.time_column
    shown = (
        select(page.c.id, page.c[time])
        .order_by(page.c[time].desc(), page.c.id.desc())
        .limit(bindparam("page_limit"))
        .subquery("shown")
    )
    entry_ids = select(
        func.coalesce(
            func.json_agg(
                postgresql.aggregate_order_by(
                    cast(shown.c.id, String), shown.c[time].desc(), shown.c.id.desc()
                )
            ),
            literal_column("'[]'::json"),
        )
    ).scalar_subquery()
    count = select(func.count()).select_from(shown).scalar_subquery()
    filled: dict[str, Any] = {"entry_ids": entry_ids, "count": count}
    values = select(
        *(
            filled.get(column.name, bindparam(f"audit_{column.name}", type_=column.type))
            for column in _AUDIT.c
        )
    ).where(exists(select(live.c.id)))
    audit = (
        postgresql.insert(_AUDIT)
        .from_select([column.name for column in _AUDIT.c], values)
        .returning(_AUDIT.c.id)
        .cte("audit")
    )
    one = select(literal(1).label("one")).subquery("one")
    return (
        select(
            select(func.count()).select_from(live).scalar_subquery().label("read_live"),
            # Named so that the audit CTE is part of the statement (PostgreSQL runs it anyway).
            select(audit.c.id).scalar_subquery().label("read_audit"),
            *page.c,
        )
        .select_from(one.outerjoin(page, true()))
        .order_by(page.c[time].desc(), page.c.id.desc())
    )


async def shared_page(
    request: Request,
    session: AsyncSession,
    reader: Reader,
    patient_id: uuid.UUID,
    resource: Resource,
    settings: Settings,
    query: PageQuery,
) -> BaseModel:
    """The answer to a therapist's list of ``resource``: one read (see the module) for the
    common request, the checks' own path otherwise; every refusal as ``open_read`` gives it."""
    needed = resource.scope
    if (
        patient_id != reader.patient_id
        or needed.value not in reader.scopes
        or query.request.session_id is not None
    ):
        return await _checked_then_read(
            request, session, reader, patient_id, resource, settings, query
        )
    try:
        start = paging.after(query.cursor)
    except ProblemError:
        # A refusal of the reader comes before a bad cursor, as on every therapist route.
        await open_read(request, session, reader, patient_id, needed, resource.name, "list")
        raise
    scope = Scope.shared(patient_id, frozenset(s.partition(":")[0] for s in reader.scopes))
    now = utcnow()
    shared = SharedRead(
        model=resource.model,
        reader=reader,
        page=dataclasses.replace(query.request, after=start),
        audit=audit_values(
            AuditRecord(
                at=now,
                request_id=request.state.request_id,
                therapist_id=reader.therapist_id,
                patient_id=patient_id,
                grant_id=reader.grant_id,
                resource=resource.name,
                action="list",
                entry_ids=[],
                count=0,
                outcome=AuditOutcome.ALLOWED.value,
            )
        ),
        now=now,
    )
    found = await read(await session.connection(), shared)
    if not found.live:
        # Refused, and the refusal recorded, by the checks' own path. A grant that ended does
        # not start again, so it does not return; if it did, the read is made that way.
        return await _checked_then_read(
            request, session, reader, patient_id, resource, settings, query
        )
    limit = shared.page.limit
    rows = EntryRepository(session, resource.model, scope).open_rows(found.rows)
    page_rows = rows[:limit]
    items = [resource.present(resource, row, settings) for row in page_rows]
    next_cursor = service.next_cursor(resource, page_rows, len(rows) > limit)
    page = page_model(resource)(items=items, next_cursor=next_cursor)
    await hide_unseen_references(session, scope, page.items)  # type: ignore[attr-defined]
    return page


async def _checked_then_read(
    request: Request,
    session: AsyncSession,
    reader: Reader,
    patient_id: uuid.UUID,
    resource: Resource,
    settings: Settings,
    query: PageQuery,
) -> BaseModel:
    access = await open_read(
        request, session, reader, patient_id, resource.scope, resource.name, "list"
    )
    rows, page = await read_page(session, resource, access.scope, settings, query)
    await hide_unseen_references(session, access.scope, page.items)  # type: ignore[attr-defined]
    await access.allowed([row.id for row in rows])
    return page


def reader_of(resource: Resource, action: str) -> Callable[..., Awaitable[Reader]]:
    """The reader a read token names, checked for its signature and expiry only: the live checks
    are the read's own. A request refused by validation is answered after those checks
    (``FIRST_CHECK``), as when they ran before it."""

    async def reader(
        request: Request,
        patient_id: uuid.UUID,
        tokens: TokensDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(read_bearer)],
    ) -> Reader:
        return deferred_reader(request, patient_id, tokens, credentials, resource, action)

    return reader


def deferred_reader(
    request: Request,
    patient_id: uuid.UUID,
    tokens: Any,
    credentials: HTTPAuthorizationCredentials | None,
    resource: Resource,
    action: str,
) -> Reader:
    found = token_reader(tokens, credentials)
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker

    async def first_check() -> None:
        # A request refused by validation is answered after its own session is gone.
        async with sessionmaker() as own:
            await open_read(request, own, found, patient_id, resource.scope, resource.name, action)

    setattr(request.state, FIRST_CHECK, first_check)
    return found
