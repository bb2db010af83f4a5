"""The patient's own routes for every journal resource, built from its ``Resource`` description."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from api.auth.dependencies import DeferredPatientDep, OwnScope, SettingsDep, require_live
from api.database import SessionDep
from api.errors import StaleProblem, problems
from api.headers import ETAG, LOCATION, sends
from api.journal import creates, idempotency, lists, service
from api.journal.pages import PageQuery, page_model, page_query
from api.journal.repository import Entry, Scope
from api.journal.resource import Resource
from api.preconditions import IfMatch, etag
from api.routing import api_router
from api.serialization import json_response
from api.settings import Settings


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


def build_router(resource: Resource) -> APIRouter:
    router = api_router(prefix=f"/v1/{resource.name}", tags=[resource.name])
    noun = resource.noun
    a_noun = resource.a_noun
    # A stale edit or delete is answered with the entry as it is now (its 412 example).
    stale = {412: {"current": resource.example}}
    read = resource.read

    async def create(
        data: Any,
        caller: DeferredPatientDep,
        session: SessionDep,
        settings: SettingsDep,
        idempotency_key: idempotency.IdempotencyKey = None,
    ) -> Response:
        scope = Scope.own(caller.id)
        fingerprint = idempotency.fingerprint("POST", router.prefix, data.model_dump_json())

        def answer(entry: Entry, replayed: bool) -> Response:
            return json_response(
                resource.present(resource, entry, settings), 201, headers(entry, replayed)
            )

        if creates.in_one_write(resource):
            return await creates.create(
                session, resource, caller, data, idempotency_key, fingerprint, answer
            )
        await require_live(session, caller)

        async def produce() -> Response:
            entry, replayed = await service.create(session, resource, scope, data)
            shown = resource.present(resource, entry, settings)
            if resource.answer_create is not None:
                shown = await resource.answer_create(session, scope, entry, shown)
            return json_response(shown, 201, headers(entry, replayed))

        return await idempotency.once(
            session, scope.owner_id, idempotency_key, fingerprint, produce
        )

    def headers(entry: Entry, replayed: bool) -> dict[str, str]:
        sent = {"Location": f"/v1/{resource.name}/{entry.id}", "ETag": etag(entry.version)}
        if replayed:
            sent[idempotency.REPLAYED_HEADER] = "true"
        return sent

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
        caller: DeferredPatientDep, session: SessionDep, settings: SettingsDep, query: Any
    ) -> Response:
        return json_response(await lists.own_page(session, resource, caller, settings, query))

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
                **problems(
                    401, 403, 404, 412, 413, 422, 428, kinds={412: StaleProblem}, examples=stale
                ),
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
        responses=problems(401, 403, 404, 412, 422, 428, kinds={412: StaleProblem}, examples=stale),
    )
    return router
