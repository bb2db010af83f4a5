"""The sync feed (every change since a cursor) and offline batches (each operation on its own,
or all or nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, Conflict, NotFound, PreconditionFailed, ProblemError
from api.journal import service as journal
from api.journal.cursors import InvalidCursor, decode_sequence
from api.journal.registry import BY_NAME, RESOURCES
from api.journal.repository import (
    Entry,
    EntryRepository,
    EntryRow,
    Scope,
    is_deleted,
    tombstones_since,
)
from api.journal.resource import Leniency, Resource
from api.journal.schemas import CLOCK_ADJUSTED
from api.models import ChangeCounter, JournalEntry, Tombstone
from api.preconditions import etag, require_match
from api.settings import Settings
from api.sync.schemas import (
    Changes,
    Deletions,
    OperationProblem,
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


class EntryGone(Conflict):
    """An edit of an entry the patient deleted meanwhile (on another device): a conflict, with no
    current entry to show."""


GONE = "This entry was deleted (on another device?): the edit was not kept."
NOT_EDITABLE = "This id holds an entry that is never edited, with another body: not written."


def _validate(model: type[Any], data: dict[str, Any] | None, index: int, leniency: Leniency) -> Any:
    try:
        return model.model_validate(data or {}, context={CLOCK_ADJUSTED: leniency.clock_adjusted})
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


class Conflicting(Exception):
    """An operation made against another version than the server's: nothing written."""

    def __init__(self, problem: ProblemError, entry: JournalEntry | None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.entry = entry


@dataclass
class Applied:
    status: int
    entry: Entry | None
    replayed: bool = False


async def _create(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry_id: uuid.UUID,
    data: dict[str, Any] | None,
    index: int,
    leniency: Leniency,
) -> Applied:
    create = _validate(resource.create, {**(data or {}), "id": str(entry_id)}, index, leniency)
    existing = await journal.entry_or_none(session, resource, scope, entry_id)
    if existing is None:
        if await is_deleted(session, scope, entry_id):
            raise Conflicting(EntryGone(GONE), None)
        # The one create path of every route (api.journal.service.create).
        entry, replayed = await journal.create(session, resource, scope, create, leniency)
        return Applied(200 if replayed else 201, entry, replayed)
    # The id is ours already: this create was applied before and its answer lost (the phone
    # still holds it as new, perhaps edited since). An edit made against the version a create
    # makes, version 1.
    if journal.same_as_stored(resource, existing, create):
        return Applied(200, existing, replayed=True)
    if resource.update is None:
        raise Conflicting(Conflict(NOT_EDITABLE), existing)
    changes = _validate(
        resource.update,
        create.model_dump(mode="json", exclude_unset=True, exclude={"id"}),
        index,
        leniency,
    )
    return await _edit(session, resource, scope, existing, changes, 1, leniency)


async def _edit(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry: JournalEntry,
    changes: Any,
    base_version: int,
    leniency: Leniency,
) -> Applied:
    if entry.version != base_version:
        if journal.holds_already(resource, entry, changes):
            return Applied(200, entry, replayed=True)
        raise Conflicting(journal.StaleEntry(entry), entry)
    return Applied(
        200, await journal.apply_update(session, resource, scope, entry, changes, leniency)
    )


async def _apply(
    session: AsyncSession,
    scope: Scope,
    operation: SyncOperation,
    entry_id: uuid.UUID,
    index: int,
    leniency: Leniency,
) -> Applied:
    resource = BY_NAME[operation.resource]
    if operation.op == "create":
        return await _create(session, resource, scope, entry_id, operation.data, index, leniency)
    entry = await journal.entry_or_none(session, resource, scope, entry_id)
    if operation.op == "delete":
        if entry is None:
            # Deleted already, or never stored (created and deleted offline): nothing to do.
            return Applied(204, None, replayed=True)
        try:
            require_match(operation.if_match, entry.version)
        except PreconditionFailed:
            raise Conflicting(journal.StaleEntry(entry), entry) from None
        await journal.apply_delete(session, resource, scope, entry)
        return Applied(204, None)
    if resource.update is None:
        raise BadRequest(f"{resource.name} cannot be edited.")
    changes = _validate(resource.update, operation.data, index, leniency)
    if entry is None:
        if await is_deleted(session, scope, entry_id):
            raise Conflicting(EntryGone(GONE), None)
        raise NotFound(f"No {resource.noun} with this id.")
    try:
        require_match(operation.if_match, entry.version)
    except PreconditionFailed:
        # Made against an older version: by the rule, the same as on PATCH.
        return await _edit(session, resource, scope, entry, changes, -1, leniency)
    return await _edit(session, resource, scope, entry, changes, entry.version, leniency)


def _notes(leniency: Leniency) -> list[str]:
    notes = list(leniency.notes)
    if leniency.clock_adjusted:
        fields = ", ".join(sorted(set(leniency.clock_adjusted)))
        notes.append(
            f"clock_adjusted: {fields} lay more than 5 minutes in the future (a clock running "
            "ahead?) and was stored as the server's receipt time."
        )
    return notes


def _problem(problem: ProblemError) -> OperationProblem:
    return OperationProblem.model_validate(problem.body())


def _present(resource: Resource, entry: Entry | None, settings: Settings) -> dict[str, Any] | None:
    if entry is None:
        return None
    presented: dict[str, Any] = resource.present(resource, entry, settings).model_dump(mode="json")
    return presented


async def _one(
    session: AsyncSession,
    scope: Scope,
    settings: Settings,
    operation: SyncOperation,
    index: int,
    atomic: bool,
) -> OperationResult:
    resource = BY_NAME[operation.resource]
    entry_id = operation.id or uuid.uuid4()
    leniency = Leniency()
    result = OperationResult(
        op=operation.op, resource=resource.name, id=entry_id, status=0, etag=None
    )
    try:
        if atomic:
            applied = await _apply(session, scope, operation, entry_id, index, leniency)
        else:
            # Each operation in a savepoint of the batch's one transaction: one that fails
            # leaves nothing behind, and the others stand.
            async with session.begin_nested():
                applied = await _apply(session, scope, operation, entry_id, index, leniency)
    except Conflicting as conflict:
        if atomic:
            if conflict.entry is not None:
                conflict.problem.extra["current"] = _present(resource, conflict.entry, settings)
            raise _for_operation(conflict.problem, operation, index) from None
        result.outcome = "conflict"
        result.status = conflict.problem.status
        result.problem = _problem(conflict.problem)
        result.current = _present(resource, conflict.entry, settings)
        result.etag = etag(conflict.entry.version) if conflict.entry is not None else None
        return result
    except ProblemError as problem:
        if atomic:
            raise _for_operation(problem, operation, index) from None
        result.outcome = "rejected"
        result.status = problem.status
        result.problem = _problem(problem)
        return result
    result.outcome = "replayed" if applied.replayed else "applied"
    result.status = applied.status
    result.etag = etag(applied.entry.version) if applied.entry is not None else None
    result.notes = _notes(leniency)
    return result


def _for_operation(problem: ProblemError, operation: SyncOperation, index: int) -> ProblemError:
    problem.detail = f"Operation {index} ({operation.op} {operation.resource}): {problem.detail}"
    problem.extra["operation"] = index
    return problem


async def push(
    session: AsyncSession, scope: Scope, settings: Settings, batch: SyncBatch
) -> SyncResult:
    """Apply every operation in order, in this request's transaction, each answered on its own;
    with ``atomic``, the first that cannot be applied undoes them all."""
    return SyncResult(
        results=[
            await _one(session, scope, settings, operation, index, batch.atomic)
            for index, operation in enumerate(batch.operations)
        ]
    )
