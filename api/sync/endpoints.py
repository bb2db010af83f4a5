from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Response

from api.auth.dependencies import SettingsDep
from api.database import SessionDep
from api.errors import problems
from api.journal import idempotency
from api.journal.endpoints import OwnScope, json_response
from api.routing import api_router
from api.sync import service
from api.sync.schemas import SyncBatch, SyncPage, SyncResult

router = api_router(prefix="/v1/sync", tags=["sync"])


@router.get("", responses=problems(400, 401, 403, 422))
async def pull_changes(
    scope: OwnScope,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Annotated[
        str, Query(max_length=64, description="`next_cursor` of the last sync; `0` the first time.")
    ] = "0",
    limit: Annotated[
        int, Query(ge=1, le=1000, description="At most this many changes, 1-1000.")
    ] = 500,
) -> SyncPage:
    """Every change to your journal since `cursor`: entries created or edited (their current version) and ids deleted.

    The cursor is a change sequence number, not a time: a write that commits late is never skipped. Repeat with
    `next_cursor` while `has_more` is true.
    """
    return await service.pull(session, scope, settings, cursor, limit)


@router.post(
    "", response_model=SyncResult, responses=problems(400, 401, 403, 404, 409, 412, 413, 422, 428)
)
async def push_changes(
    batch: SyncBatch,
    scope: OwnScope,
    session: SessionDep,
    idempotency_key: Annotated[
        str,
        Header(
            description="Required here: resending the batch with the same key returns the first answer."
        ),
    ],
) -> Response:
    """Apply a batch of offline creates, updates and deletes in one transaction: all of them, or none.

    Each operation behaves as the resource's own route would (ids, validation, `if_match`). The first that fails
    undoes the batch; the problem's `operation` member says which one.
    """

    async def produce() -> Response:
        return json_response(await service.push(session, scope, batch))

    fingerprint = idempotency.fingerprint("POST", router.prefix, batch.model_dump_json())
    return await idempotency.once(session, scope.owner_id, idempotency_key, fingerprint, produce)
