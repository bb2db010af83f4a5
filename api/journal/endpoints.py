"""The patient's own routes for every journal resource, built from its ``Resource`` description."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.dependencies import PatientDep, SettingsDep
from api.database import SessionDep
from api.errors import StaleProblem, problems
from api.headers import ETAG, LOCATION, sends
from api.journal import idempotency, service
from api.journal.repository import EntryRow, PageRequest, Scope
from api.journal.resource import Resource
from api.journal.schemas import QueryTime
from api.preconditions import IfMatch, etag
from api.routing import api_router
from api.settings import Settings

Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1-200.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` from the previous page.")
]
Since = Annotated[QueryTime | None, Query(description="Only entries at or after this time.")]
Until = Annotated[QueryTime | None, Query(description="Only entries before this time.")]
SessionFilter = Annotated[
    uuid.UUID | None, Query(description="Only entries linked to this dosing session.")
]


async def own_scope(caller: PatientDep) -> Scope:
    return Scope.own(caller.id)


OwnScope = Annotated[Scope, Depends(own_scope)]


def json_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        model.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def with_current(
    stale: service.StaleEntry, resource: Resource, settings: Settings
) -> service.StaleEntry:
    """The 412 of a conflict, with the entry as it is now as its ``current`` member."""
    current = resource.present(resource, stale.entry, settings)
    stale.extra["current"] = current.model_dump(mode="json")
    return stale


def _typed(function: Callable[..., Any], **annotations: Any) -> Callable[..., Any]:
    """Give a generated endpoint the concrete schema types FastAPI validates and documents."""
    signature = inspect.signature(function, eval_str=True)
    function.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            parameter.replace(annotation=annotations.get(parameter.name, parameter.annotation))
            for parameter in signature.parameters.values()
        ]
    )
    return function


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


def build_router(resource: Resource) -> APIRouter:
    router = api_router(prefix=f"/v1/{resource.name}", tags=[resource.name])
    noun = resource.noun
    a_noun = resource.a_noun
    read = resource.read

    async def create(
        data: Any,
        scope: OwnScope,
        session: SessionDep,
        settings: SettingsDep,
        idempotency_key: idempotency.IdempotencyKey = None,
    ) -> Response:
        async def produce() -> Response:
            entry, replayed = await service.create(session, resource, scope, data)
            headers = {"Location": f"/v1/{resource.name}/{entry.id}", "ETag": etag(entry.version)}
            if replayed:
                headers[idempotency.REPLAYED_HEADER] = "true"
            shown = resource.present(resource, entry, settings)
            if resource.answer_create is not None:
                shown = await resource.answer_create(session, scope, entry, shown)
            return json_response(shown, 201, headers)

        fingerprint = idempotency.fingerprint("POST", router.prefix, data.model_dump_json())
        return await idempotency.once(
            session, scope.owner_id, idempotency_key, fingerprint, produce
        )

    router.add_api_route(
        "",
        _typed(create, data=resource.create),
        methods=["POST"],
        name=f"create_{resource.singular}",
        status_code=status.HTTP_201_CREATED,
        response_model=read,
        summary=f"Create {a_noun}",
        description=f"Record {a_noun}. Send your own `id` to create offline; resending the same id and "
        "body (or the same `Idempotency-Key` and body) returns the first answer and writes nothing.",
        responses={**problems(400, 401, 403, 409, 413, 422), **sends(201, LOCATION, ETAG)},
    )

    async def list_entries(
        scope: OwnScope, session: SessionDep, settings: SettingsDep, query: Any
    ) -> Response:
        _rows, page = await read_page(session, resource, scope, settings, query)
        return json_response(page)

    router.add_api_route(
        "",
        _typed(list_entries, query=Annotated[PageQuery, Depends(page_query(resource))]),
        methods=["GET"],
        name=f"list_{resource.name}",
        response_model=page_model(resource),
        summary=f"List your {resource.name}",
        description=f"Your {noun} entries, newest first by their own time, a page at a time. "
        "`since` is inclusive, `until` exclusive.",
        responses=problems(400, 401, 403, 422),
    )

    async def get_entry(
        entry_id: uuid.UUID, scope: OwnScope, session: SessionDep, settings: SettingsDep
    ) -> Response:
        entry = await service.get(session, resource, scope, entry_id)
        return json_response(
            resource.present(resource, entry, settings), headers={"ETag": etag(entry.version)}
        )

    router.add_api_route(
        "/{entry_id}",
        get_entry,
        methods=["GET"],
        name=f"get_{resource.singular}",
        response_model=read,
        summary=f"Read {a_noun}",
        description=f"One {noun}, with its ETag for a later PATCH or DELETE.",
        responses={**problems(401, 403, 404, 422), **sends(200, ETAG)},
    )

    if resource.update is not None:

        async def update_entry(
            entry_id: uuid.UUID,
            data: Any,
            scope: OwnScope,
            session: SessionDep,
            settings: SettingsDep,
            if_match: IfMatch = None,
        ) -> Response:
            try:
                entry, _nothing_to_do = await service.update(
                    session, resource, scope, entry_id, data, if_match
                )
            except service.StaleEntry as stale:
                raise with_current(stale, resource, settings) from None
            return json_response(
                resource.present(resource, entry, settings), headers={"ETag": etag(entry.version)}
            )

        router.add_api_route(
            "/{entry_id}",
            _typed(update_entry, data=resource.update),
            methods=["PATCH"],
            name=f"update_{resource.singular}",
            response_model=read,
            summary=f"Edit {a_noun}",
            description="Change the fields you send; leave the others out. Needs `If-Match`: "
            "when it names an older version, the edit is a conflict (412, nothing written, the "
            "problem's `current` member holding the entry as it is now), unless every field sent "
            "already holds that value (a resend whose answer was lost: 200, nothing written twice).",
            responses={
                **problems(401, 403, 404, 412, 413, 422, 428, kinds={412: StaleProblem}),
                **sends(200, ETAG),
            },
        )

    async def delete_entry(
        entry_id: uuid.UUID,
        scope: OwnScope,
        session: SessionDep,
        settings: SettingsDep,
        if_match: IfMatch = None,
    ) -> Response:
        try:
            await service.delete(session, resource, scope, entry_id, if_match)
        except service.StaleEntry as stale:
            raise with_current(stale, resource, settings) from None
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    router.add_api_route(
        "/{entry_id}",
        delete_entry,
        methods=["DELETE"],
        name=f"delete_{resource.singular}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary=f"Delete {a_noun}",
        description="Deleted for good; sync reports the id as deleted. Needs `If-Match`: a delete "
        "made against an older version never discards the edit made since (412, the problem's "
        "`current` member holding the entry as it is now).",
        responses=problems(401, 403, 404, 412, 422, 428, kinds={412: StaleProblem}),
    )
    return router
