"""A page of a journal resource: its list parameters and its reading, for the patient's own
list, the therapist's shared list and the therapist web page alike."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.journal import service
from api.journal.repository import EntryRow, PageRequest, Scope
from api.journal.resource import Resource
from api.journal.schemas import QueryTime
from api.paging import Cursor, Limit
from api.settings import Settings

Since = Annotated[QueryTime | None, Query(description="Only entries at or after this time.")]
Until = Annotated[QueryTime | None, Query(description="Only entries before this time.")]
SessionFilter = Annotated[
    uuid.UUID | None, Query(description="Only entries linked to this dosing session.")
]


@dataclass(frozen=True)
class PageQuery:
    request: PageRequest
    cursor: str | None


async def _page_query(
    limit: Limit = 50, cursor: Cursor = None, since: Since = None, until: Until = None
) -> PageQuery:
    return PageQuery(PageRequest(limit=limit, since=since, until=until), cursor)


async def _page_query_by_session(
    limit: Limit = 50,
    cursor: Cursor = None,
    since: Since = None,
    until: Until = None,
    session_id: SessionFilter = None,
) -> PageQuery:
    request = PageRequest(limit=limit, since=since, until=until, session_id=session_id)
    return PageQuery(request, cursor)


def page_query(resource: Resource) -> Callable[..., Awaitable[PageQuery]]:
    """The list parameters of a resource: `session_id` only where entries can name a session,
    so the filter is never offered and then ignored."""
    return _page_query_by_session if resource.session_linked else _page_query


async def read_page(
    session: AsyncSession, resource: Resource, scope: Scope, settings: Settings, query: PageQuery
) -> tuple[list[EntryRow], BaseModel]:
    """One page of a resource within a scope, as rows and as the response body."""
    rows, next_cursor = await service.page(session, resource, scope, query.request, query.cursor)
    items = [resource.present(resource, row, settings) for row in rows]
    return rows, page_model(resource)(items=items, next_cursor=next_cursor)


def page_model(resource: Resource) -> type[BaseModel]:
    from api.journal.schemas import Page

    model: type[BaseModel] = Page[resource.read]  # type: ignore[name-defined]
    return model
