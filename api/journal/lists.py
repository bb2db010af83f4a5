"""A patient's page of their own entries as one read: the login's liveness and the page, in one
statement on PostgreSQL and as separate steps elsewhere.

``read`` runs an ``OwnRead`` on the request's connection. On PostgreSQL (a read runs in
autocommit there, ``api.database``) the login is checked live as every request checks it
(``AccountRepository.role_with_live_login``, a CTE) and the page is read only when it is a
patient's. On SQLite the two steps run one after the other. Either way ``OwnRows.role`` says who
asked (None: the login is over) and no rows are read for anyone but the patient.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, exists, literal, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api import paging
from api.accounts.repository import ROLE_WITH_LIVE_LOGIN
from api.auth.dependencies import PATIENTS_ONLY, REVOKED, Caller, require_live
from api.errors import Forbidden, ProblemError, Unauthorized
from api.journal import service
from api.journal.pages import PageQuery, page_model, read_page
from api.journal.repository import EntryRepository, PageRequest, Scope, entry_rows, page_statement
from api.journal.resource import Resource
from api.models import JournalEntry, Role
from api.settings import Settings


@dataclass(frozen=True)
class OwnRead:
    """One page of a patient's own entries, as their token names them."""

    model: type[JournalEntry]
    caller: Caller
    page: PageRequest


@dataclass(frozen=True)
class OwnRows:
    """``role`` None: the login is over; another role than a patient's reads nothing. ``rows``:
    the page as stored (sealed), newest first, up to its limit and one more."""

    role: Role | None
    rows: list[dict[str, Any]]


async def read(connection: AsyncConnection, own: OwnRead) -> OwnRows:
    """The read, in one statement where the database allows it (see the module)."""
    if connection.dialect.name == "postgresql":
        return await in_one_statement(connection, own)
    return await in_steps(connection, own)


def _login_values(own: OwnRead) -> dict[str, Any]:
    return {"token_account": own.caller.id, "token_login": own.caller.login_id}


async def in_steps(connection: AsyncConnection, own: OwnRead) -> OwnRows:
    """The steps as separate statements."""
    role = (await connection.execute(ROLE_WITH_LIVE_LOGIN, _login_values(own))).scalar()
    if role is not Role.PATIENT:
        return OwnRows(role=role, rows=[])
    statement = page_statement(own.model, True, **own.page.filters())
    found = await connection.execute(statement, own.page.params(own.caller.id))
    return OwnRows(role=role, rows=[dict(row) for row in found.mappings()])


async def in_one_statement(connection: AsyncConnection, own: OwnRead) -> OwnRows:
    """The steps as one statement: the login a CTE, the page read only for a patient's."""
    statement = _one_statement(own.model, **own.page.filters())
    params = {**_login_values(own), **own.page.params(own.caller.id)}
    found = (await connection.execute(statement, params)).all()
    # Each row: the login's role, then the entry's columns.
    role: Role | None = found[0][0] if found else None
    if role is not Role.PATIENT:
        return OwnRows(role=role, rows=[])
    return OwnRows(role=role, rows=entry_rows(found, own.model, 1))


@functools.cache
def _one_statement(
    model: type[JournalEntry], *, since: bool, until: bool, by_session: bool, after: bool
) -> Select[Any]:
    """Built once per resource and set of filters."""
    live = ROLE_WITH_LIVE_LOGIN.cte("live")
    page = (
        page_statement(model, True, since=since, until=until, by_session=by_session, after=after)
        .where(exists(select(live.c.role).where(live.c.role == Role.PATIENT)))
        .cte("page")
    )
    time = model.time_column
    one = select(literal(1).label("one")).subquery("one")
    return (
        select(select(live.c.role).scalar_subquery().label("read_role"), *page.c)
        .select_from(one.outerjoin(page, true()))
        .order_by(page.c[time].desc(), page.c.id.desc())
    )


async def own_page(
    session: AsyncSession,
    resource: Resource,
    caller: Caller,
    settings: Settings,
    query: PageQuery,
) -> BaseModel:
    """The answer to a patient's list of ``resource``: one read (see the module) when the
    caller's login is still to be checked (``deferred_patient``), else the page alone. A dead
    login's 401, then a non-patient's 403, come before any other refusal."""
    if caller.checked:
        _rows, page = await read_page(session, resource, Scope.own(caller.id), settings, query)
        return page
    try:
        start = paging.after(query.cursor)
    except ProblemError:
        await require_live(session, caller, for_write=False)
        raise
    own = OwnRead(resource.model, caller, dataclasses.replace(query.request, after=start))
    found = await read(await session.connection(), own)
    if found.role is None:
        raise Unauthorized(REVOKED)
    if found.role is not Role.PATIENT:
        raise Forbidden(PATIENTS_ONLY)
    limit = own.page.limit
    rows = EntryRepository(session, resource.model, Scope.own(caller.id)).open_rows(found.rows)
    page_rows = rows[:limit]
    items = [resource.present(resource, row, settings) for row in page_rows]
    cursor = service.next_cursor(resource, page_rows, len(rows) > limit)
    return page_model(resource)(items=items, next_cursor=cursor)
