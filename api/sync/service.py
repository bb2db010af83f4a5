"""The sync feed (every change since a cursor) and offline batches (each operation on its own,
or all or nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, Conflict, NotFound, PreconditionFailed, ProblemError
from api.journal import service as journal
from api.journal.cursors import InvalidCursor, decode_sequence
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
from api.resources import BY_NAME, RESOURCES
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


def _validate(
    model: type[Any], data: dict[str, Any] | None, at: tuple[str | int, ...], leniency: Leniency
) -> Any:
    try:
        return model.model_validate(data or {}, context={CLOCK_ADJUSTED: leniency.clock_adjusted})
    except ValidationError as exc:
        raise InvalidOperationData(
            "The request is not valid: see errors.",
            errors=[
                {
                    "loc": [*at, *e["loc"]],
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


@dataclass(frozen=True)
class Basis:
    """What a change was made against: the version its ``if_match`` names (``/v1/sync``), or
    the change number of the sender's last pull (WatermelonDB's ``last_pulled_at``)."""

    if_match: str | None = None
    pulled: int | None = None

    def stale(self, entry: JournalEntry, *, create: bool = False) -> bool:
        """Whether ``entry`` moved on from what the change was made against. Raises 428 when
        an edit or delete of ``/v1/sync`` names no version."""
        if self.pulled is not None:
            return entry.seq > self.pulled
        if create:
            return entry.version != 1  # what a create makes
        try:
            require_match(self.if_match, entry.version)
        except PreconditionFailed:
            return True
        return False


@dataclass(frozen=True)
class Change:
    """One create, edit or delete, from either protocol."""

    op: Literal["create", "update", "delete"]
    resource: Resource
    id: uuid.UUID
    data: dict[str, Any] | None
    basis: Basis
    at: tuple[str | int, ...]  # where its data was in the request, for errors' `loc`


@dataclass
class Applied:
    status: int
    entry: Entry | None
    replayed: bool = False


async def unknown(
    session: AsyncSession, resource: Resource, scope: Scope, entry_id: uuid.UUID
) -> bool:
    """Whether no entry of the owner's has this id, nor ever had."""
    if await journal.entry_or_none(session, resource, scope, entry_id) is not None:
        return False
    return not await is_deleted(session, scope, entry_id)


async def _create(
    session: AsyncSession, scope: Scope, change: Change, leniency: Leniency
) -> Applied:
    resource = change.resource
    create = _validate(
        resource.create, {**(change.data or {}), "id": str(change.id)}, change.at, leniency
    )
    existing = await journal.entry_or_none(session, resource, scope, change.id)
    if existing is None:
        if await is_deleted(session, scope, change.id):
            raise Conflicting(EntryGone(GONE), None)
        # The one create path of every route (api.journal.service.create).
        entry, replayed = await journal.create(session, resource, scope, create, leniency)
        return Applied(200 if replayed else 201, entry, replayed)
    # The id is ours already: this create was applied before and its answer lost (the phone
    # still holds it as new, perhaps edited since). An edit made against what the create made.
    if journal.same_as_stored(resource, existing, create):
        return Applied(200, existing, replayed=True)
    if resource.update is None:
        raise Conflicting(Conflict(NOT_EDITABLE), existing)
    changes = _validate(
        resource.update,
        create.model_dump(mode="json", exclude_unset=True, exclude={"id"}),
        change.at,
        leniency,
    )
    stale = change.basis.stale(existing, create=True)
    return await _edit(session, resource, scope, existing, changes, stale, leniency)


async def _edit(
    session: AsyncSession,
    resource: Resource,
    scope: Scope,
    entry: JournalEntry,
    changes: Any,
    stale: bool,
    leniency: Leniency,
) -> Applied:
    if stale:
        if journal.holds_already(resource, entry, changes):
            return Applied(200, entry, replayed=True)
        raise Conflicting(journal.StaleEntry(entry), entry)
    return Applied(
        200, await journal.apply_update(session, resource, scope, entry, changes, leniency)
    )


async def _apply(
    session: AsyncSession, scope: Scope, change: Change, leniency: Leniency
) -> Applied:
    resource = change.resource
    if change.op == "create":
        return await _create(session, scope, change, leniency)
    entry = await journal.entry_or_none(session, resource, scope, change.id)
    if change.op == "delete":
        if entry is None:
            # Deleted already, or never stored (created and deleted offline): nothing to do.
            return Applied(204, None, replayed=True)
        if change.basis.stale(entry):
            # A delete never discards an edit made after the version it saw.
            raise Conflicting(journal.StaleEntry(entry), entry)
        await journal.apply_delete(session, resource, scope, entry)
        return Applied(204, None)
    if resource.update is None:
        raise BadRequest(f"{resource.name} cannot be edited.")
    changes = _validate(resource.update, change.data, change.at, leniency)
    if entry is None:
        if await is_deleted(session, scope, change.id):
            raise Conflicting(EntryGone(GONE), None)
        raise NotFound(f"No {resource.noun} with this id.")
    stale = change.basis.stale(entry)
    return await _edit(session, resource, scope, entry, changes, stale, leniency)


def _notes(leniency: Leniency) -> list[str]:
    notes = list(leniency.notes)
    if leniency.clock_adjusted:
        fields = ", ".join(sorted(set(leniency.clock_adjusted)))
        notes.append(
            f"clock_adjusted: {fields} lay more than 5 minutes in the future (a clock running "
            "ahead?) and was stored as the server's receipt time."
        )
    return notes


def operation_problem(problem: ProblemError) -> OperationProblem:
    return OperationProblem.model_validate(problem.body())


def _present(resource: Resource, entry: Entry | None, settings: Settings) -> dict[str, Any] | None:
    if entry is None:
        return None
    presented: dict[str, Any] = resource.present(resource, entry, settings).model_dump(mode="json")
    return presented


async def apply_change(
    session: AsyncSession, scope: Scope, settings: Settings, change: Change, atomic: bool = False
) -> OperationResult:
    """Apply one change by the rules, answered on its own; with ``atomic``, a change not
    applied raises its problem instead (and the caller's transaction is undone)."""
    resource = change.resource
    leniency = Leniency()
    result = OperationResult(
        op=change.op, resource=resource.name, id=change.id, status=0, etag=None
    )
    try:
        if atomic:
            applied = await _apply(session, scope, change, leniency)
        else:
            # Each change in a savepoint of the batch's one transaction: one that fails leaves
            # nothing behind, and the others stand.
            async with session.begin_nested():
                applied = await _apply(session, scope, change, leniency)
    except Conflicting as conflict:
        if atomic:
            if conflict.entry is not None:
                conflict.problem.extra["current"] = _present(resource, conflict.entry, settings)
            raise conflict.problem from None
        result.outcome = "conflict"
        result.status = conflict.problem.status
        result.problem = operation_problem(conflict.problem)
        result.current = _present(resource, conflict.entry, settings)
        result.etag = etag(conflict.entry.version) if conflict.entry is not None else None
        return result
    except ProblemError as problem:
        if atomic:
            raise
        result.outcome = "rejected"
        result.status = problem.status
        result.problem = operation_problem(problem)
        return result
    result.outcome = "replayed" if applied.replayed else "applied"
    result.status = applied.status
    result.etag = etag(applied.entry.version) if applied.entry is not None else None
    result.notes = _notes(leniency)
    return result


async def _one(
    session: AsyncSession,
    scope: Scope,
    settings: Settings,
    operation: SyncOperation,
    index: int,
    atomic: bool,
) -> OperationResult:
    change = Change(
        op=operation.op,
        resource=BY_NAME[operation.resource],
        id=operation.id or uuid.uuid4(),
        data=operation.data,
        basis=Basis(if_match=operation.if_match),
        at=("body", "operations", index, "data"),
    )
    try:
        return await apply_change(session, scope, settings, change, atomic)
    except ProblemError as problem:
        raise _for_operation(problem, operation, index) from None


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
