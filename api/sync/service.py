"""The sync feed (every change since a cursor) and offline batches (all or nothing)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, ProblemError
from api.journal import service as journal
from api.journal.cursors import InvalidCursor, decode_sequence
from api.journal.registry import BY_NAME, RESOURCES
from api.journal.repository import EntryRepository, EntryRow, Scope, tombstones_since
from api.models import ChangeCounter, Tombstone
from api.preconditions import etag
from api.settings import Settings
from api.sync.schemas import (
    Changes,
    Deletions,
    OperationResult,
    SyncBatch,
    SyncOperation,
    SyncPage,
    SyncResult,
)


def parse_cursor(cursor: str) -> int:
    try:
        return decode_sequence(cursor)
    except InvalidCursor as exc:
        raise BadRequest(str(exc)) from None


async def pull(
    session: AsyncSession, scope: Scope, settings: Settings, cursor: str, limit: int
) -> SyncPage:
    """The first ``limit`` changes after ``cursor``, in change order, grouped by resource.

    Each resource's table gives at most ``limit + 1`` changes after the cursor; the global first
    ``limit`` are among them, so merging and cutting gives an exact page, and more than ``limit``
    candidates in all means more changes wait (with only ``limit`` per source, one source holding
    more than a page would look like the end).

    The reads below are separate statements, and on PostgreSQL (read committed) each sees what
    had committed when it began: a write may commit between them, and with it (numbers being
    handed out in commit order) every lower number. So the counter is read first, and only
    changes up to it are answered: all of those committed before that read, so every later
    statement sees them. Anything past it waits for the next pull, which is never skipped,
    because the cursor stays at or below the counter read here.
    """
    after = parse_cursor(cursor)
    fetch = limit + 1
    committed = (
        await session.scalar(
            select(ChangeCounter.last_seq).where(ChangeCounter.owner_id == scope.owner_id)
        )
        or 0
    )
    candidates: list[tuple[int, str, EntryRow | Tombstone]] = []
    for resource in RESOURCES:
        rows = await EntryRepository(session, resource.model, scope).changed_since(after, fetch)
        candidates.extend((row.seq, resource.name, row) for row in rows if row.seq <= committed)
    candidates.extend(
        (t.seq, t.resource, t)
        for t in await tombstones_since(session, scope, after, fetch)
        if t.seq <= committed
    )
    candidates.sort(key=lambda candidate: candidate[0])
    page = candidates[:limit]

    changes: dict[str, list[Any]] = {resource.name: [] for resource in RESOURCES}
    deleted: dict[str, list[Any]] = {resource.name: [] for resource in RESOURCES}
    for _, name, row in page:
        if isinstance(row, Tombstone):
            deleted[name].append(row.id)
        else:
            resource = BY_NAME[name]
            changes[name].append(resource.present(resource, row, settings))
    return SyncPage(
        changes=Changes.model_validate(changes),
        deleted=Deletions.model_validate(deleted),
        next_cursor=str(page[-1][0]) if page else str(after),
        has_more=len(candidates) > limit,
    )


class InvalidOperationData(ProblemError):
    """An operation's ``data`` fails its resource's schema: the same problem as a request that
    fails validation, plus (added by ``push``) the ``operation`` member every batch failure has."""

    status, title, slug = 422, "Unprocessable Content", "validation"


def _validate(model: type[Any], data: dict[str, Any] | None, index: int) -> Any:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidOperationData(
            "The request is not valid: see errors.",
            errors=[
                {
                    "loc": ["body", "operations", index, "data", *e["loc"]],
                    "msg": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors()
            ],
        ) from None


async def _apply(
    session: AsyncSession, scope: Scope, operation: SyncOperation, index: int
) -> OperationResult:
    resource = BY_NAME[operation.resource]
    if operation.op == "create":
        data = dict(operation.data or {})
        if operation.id is not None:
            data["id"] = str(operation.id)
        entry, _replayed = await journal.create(
            session, resource, scope, _validate(resource.create, data, index)
        )
        return OperationResult(
            op="create", resource=resource.name, id=entry.id, status=201, etag=etag(entry.version)
        )
    if operation.id is None:
        raise BadRequest("`id` is required for update and delete.")
    if operation.op == "update":
        if resource.update is None:
            raise BadRequest(f"{resource.name} cannot be edited.")
        changes = _validate(resource.update, operation.data, index)
        entry = await journal.update(
            session, resource, scope, operation.id, changes, operation.if_match
        )
        return OperationResult(
            op="update", resource=resource.name, id=entry.id, status=200, etag=etag(entry.version)
        )
    await journal.delete(session, resource, scope, operation.id, operation.if_match)
    return OperationResult(
        op="delete", resource=resource.name, id=operation.id, status=204, etag=None
    )


async def push(session: AsyncSession, scope: Scope, batch: SyncBatch) -> SyncResult:
    """Apply every operation in order in this request's transaction; the first failure undoes all."""
    results = []
    for index, operation in enumerate(batch.operations):
        try:
            results.append(await _apply(session, scope, operation, index))
        except ProblemError as problem:
            problem.detail = (
                f"Operation {index} ({operation.op} {operation.resource}): {problem.detail}"
            )
            problem.extra["operation"] = index
            raise
    return SyncResult(results=results)
