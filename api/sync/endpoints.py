from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Response

from api.auth.dependencies import OwnScope, SettingsDep
from api.database import SessionDep
from api.errors import problems
from api.journal import idempotency
from api.routing import api_router
from api.serialization import json_response
from api.sync import service, watermelondb
from api.sync.schemas import (
    SyncBatch,
    SyncPage,
    SyncResult,
    WatermelonPull,
    WatermelonPush,
    WatermelonPushResult,
)

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
    settings: SettingsDep,
    idempotency_key: Annotated[
        str,
        Header(
            description="Required here: resending the batch with the same key returns the first answer.",
            json_schema_extra=idempotency.KEY_SCHEMA,
        ),
    ],
) -> Response:
    """Apply a batch of offline creates, updates and deletes in one transaction, each answered on its own.

    Every operation that can be applied is; one rejected (invalid data, an assessment edited) or in conflict never
    holds back the others, so a phone's queue always drains. Each result says `applied`, `replayed` (nothing
    needed doing: a create or edit already stored, a delete of an id already deleted or never stored) `conflict`
    (made against an older version: nothing written, `current` holds the entry as it is now) or `rejected` (with
    a problem). A create of an id already yours is an edit made against version 1. A reference to a dosing
    session or intention that went away is cleared, and a time more than 5 minutes ahead is stored as the
    receipt time (`clock_adjusted`), each told in `notes`. With `"atomic": true` the batch is all or nothing:
    the first operation not applied undoes it, answered as its problem with its index as `operation`.
    """

    async def produce() -> Response:
        return json_response(await service.push(session, scope, settings, batch))

    fingerprint = idempotency.fingerprint("POST", router.prefix, batch.model_dump_json())
    return await idempotency.once(session, scope.owner_id, idempotency_key, fingerprint, produce)


@router.get("/watermelondb", responses=problems(400, 401, 403, 422))
async def pull_watermelondb(
    scope: OwnScope,
    session: SessionDep,
    settings: SettingsDep,
    last_pulled_at: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description="WatermelonDB's `lastPulledAt`: the `timestamp` of your last pull; leave "
            "it out the first time.",
        ),
    ] = None,
) -> WatermelonPull:
    """WatermelonDB's pull (`pullChanges` of `synchronize()`): every change since `last_pulled_at`, in one answer.

    `{changes: {table: {created, updated, deleted}}, timestamp}`: each entry once, in its current version, as a
    WatermelonDB raw record (times as milliseconds, lists as JSON text; the README has the schema). An assessment
    carries its `safety_flag` and, when raised, `crisis_resources`. `timestamp` is a change number plus one, not
    a time: pass it back as `last_pulled_at` (WatermelonDB does).
    """
    return await watermelondb.pull(session, scope, settings, last_pulled_at)


@router.post("/watermelondb", responses=problems(400, 401, 403, 413, 422))
async def push_watermelondb(
    body: WatermelonPush, scope: OwnScope, session: SessionDep, settings: SettingsDep
) -> WatermelonPushResult:
    """WatermelonDB's push (`pushChanges` of `synchronize()`): `{changes, last_pulled_at}` as WatermelonDB gives them.

    The same rules as `POST /v1/sync`, each record on its own in one transaction: `_status`, `_changed` and the
    server's columns are ignored (an update changes the columns `_changed` names); a record changed here since
    `last_pulled_at` is a conflict, and a delete of one never discards that edit. Records not applied are listed
    in `experimentalRejectedIds` (pass `experimentalRejectedIds` back from `pushChanges`); `results` says why, and
    gives the server's entry for each conflict. A push whose answer was lost can be sent again as it is.
    """
    return await watermelondb.push(session, scope, settings, body)
