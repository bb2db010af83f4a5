"""The sync feed and offline pushes in WatermelonDB's protocol (its `synchronize()`), on the same
rules as ``/v1/sync``.

WatermelonDB's tables are the resources (``sessions``, ``intentions``, ...), its columns the
fields of their GET answers, in the types its schema allows: times as numbers (milliseconds since
1970), lists and objects as JSON text, ids as strings. Its ``timestamp`` is our change number
plus one (never 0, which WatermelonDB refuses), so ``last_pulled_at`` is a change number too: a
write that commits late is never skipped, whatever the phone's clock says.
"""

from __future__ import annotations

import contextlib
import json
import types
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadRequest, UnprocessableContent
from api.journal.repository import Scope
from api.journal.resource import Resource
from api.resources import RESOURCES
from api.settings import Settings
from api.sync import service
from api.sync.schemas import OperationResult, WatermelonPull, WatermelonPush, WatermelonPushResult

ColumnType = Literal["string", "number", "boolean"]
# How a field travels: as is, a time as milliseconds, or a list or object as JSON text.
Encoding = Literal["plain", "time", "json"]
# A pull answers every change since last_pulled_at at once (WatermelonDB 0.28 has no pages).
PULL_LIMIT = 1_000_000


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether it was optional."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), len(args) != len(get_args(annotation))
    return annotation, False


def column(annotation: Any) -> tuple[ColumnType, Encoding, bool]:
    """The WatermelonDB column type of a field of a GET answer, its encoding, and isOptional."""
    kind, optional = _unwrap(annotation)
    origin = get_origin(kind) or kind
    if origin in (list, dict):
        return "string", "json", optional
    if kind is datetime:
        return "number", "time", optional
    if kind is bool:
        return "boolean", "plain", optional
    if kind in (int, float):
        return "number", "plain", optional
    return "string", "plain", optional


def columns(resource: Resource) -> dict[str, tuple[ColumnType, Encoding, bool]]:
    """Every column of a table, from the resource's GET answer (computed fields included)."""
    read = resource.read
    found = {name: column(info.annotation) for name, info in read.model_fields.items()}
    for name, computed in read.model_computed_fields.items():
        found[name] = column(computed.return_type)
    found.pop("id")  # WatermelonDB's own column
    return found


def writable(resource: Resource) -> set[str]:
    """The columns a phone's push may set: the resource's create body; the rest is the server's."""
    return set(resource.create.model_fields) - {"id"}


def _raw(resource: Resource, entry: BaseModel) -> dict[str, Any]:
    shown = entry.model_dump(mode="json")
    values = entry.model_dump()
    raw: dict[str, Any] = {"id": shown["id"]}
    for name, (_type, encoding, _optional) in columns(resource).items():
        value = values.get(name)
        if value is None:
            raw[name] = None
        elif encoding == "time":
            raw[name] = round(value.timestamp() * 1000)
        elif encoding == "json":
            raw[name] = json.dumps(shown[name], separators=(",", ":"))
        else:
            raw[name] = shown[name]
    return raw


def _cursor(last_pulled_at: int | None) -> int:
    return 0 if last_pulled_at is None else last_pulled_at - 1


async def pull(
    session: AsyncSession, scope: Scope, settings: Settings, last_pulled_at: int | None
) -> WatermelonPull:
    """Every change since ``last_pulled_at`` in one answer, each entry once (its current
    version): ``created`` if it was created since, else ``updated``; deleted ids."""
    page = await service.pull(session, scope, settings, str(_cursor(last_pulled_at)), PULL_LIMIT)
    changes: dict[str, dict[str, list[Any]]] = {}
    for resource in RESOURCES:
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        for entry in getattr(page.changes, resource.name):
            # Version 1: never edited, so created since the last pull (every change numbered
            # after it is newer than it). An entry created and edited since comes as updated,
            # which WatermelonDB creates when it does not hold it.
            (created if entry.version == 1 and last_pulled_at else updated).append(
                _raw(resource, entry)
            )
        if not last_pulled_at:
            created, updated = updated, []  # the first pull: everything is new to the phone
        changes[resource.name] = {
            "created": created,
            "updated": updated,
            "deleted": [str(i) for i in getattr(page.deleted, resource.name)],
        }
    return WatermelonPull.model_validate(
        {"changes": changes, "timestamp": int(page.next_cursor) + 1}
    )


def _data(resource: Resource, raw: dict[str, Any]) -> dict[str, Any]:
    """A pushed record as the resource's create body: WatermelonDB's own columns (``_status``,
    ``_changed``) and the server's are left out, times and JSON text turned back; any other
    column is kept, for validation to refuse."""
    known = columns(resource)
    data: dict[str, Any] = {}
    for name, value in raw.items():
        server_assigned = name in known and name not in writable(resource)
        if name == "id" or name.startswith("_") or server_assigned:
            continue
        _type, encoding, _optional = known.get(name, ("string", "plain", True))
        if value is not None and encoding == "time" and isinstance(value, int | float):
            try:
                value = datetime.fromtimestamp(value / 1000, UTC).isoformat()
            except (OverflowError, ValueError, OSError):
                value = "out of range"  # validation refuses it, and says where
        elif encoding == "json" and isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):  # left as text: validation says where
                value = json.loads(value) if value else []
        data[name] = value
    return data


def _id(raw: Any, at: tuple[str | int, ...]) -> uuid.UUID:
    value = raw.get("id") if isinstance(raw, dict) else raw
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise UnprocessableContent(
            "Ids must be UUIDs: give WatermelonDB a UUID generator (setGenerator).",
            loc=tuple(str(part) for part in at),
        ) from None


async def push(
    session: AsyncSession, scope: Scope, settings: Settings, body: WatermelonPush
) -> WatermelonPushResult:
    """Apply a WatermelonDB push by the rules of ``/v1/sync``, each record on its own; a record
    changed on the server since ``last_pulled_at`` is a conflict. Records not applied are named
    in ``experimentalRejectedIds``; every result, conflicts with the server's entry, in
    ``results``."""
    if body.last_pulled_at is None:
        raise BadRequest("`last_pulled_at` is required: push after a pull, as synchronize() does.")
    basis = service.Basis(pulled=_cursor(body.last_pulled_at))
    by_name = {resource.name: resource for resource in RESOURCES}
    rejected: dict[str, list[str]] = {}
    results: dict[str, list[OperationResult]] = {}
    for name, table in body.changes.items():
        resource = by_name[name]
        kinds: list[tuple[Literal["create", "update", "delete"], str, list[Any]]] = [
            ("create", "created", table.created),
            ("update", "updated", table.updated),
            ("delete", "deleted", table.deleted),
        ]
        for op, kind, records in kinds:
            for index, record in enumerate(records):
                at: tuple[str | int, ...] = ("body", "changes", name, kind, index)
                try:
                    entry_id = _id(record, (*at, "id") if op != "delete" else at)
                except UnprocessableContent as problem:
                    sent = record.get("id") if isinstance(record, dict) else record
                    rejected.setdefault(name, []).append(str(sent))
                    results.setdefault(name, []).append(
                        OperationResult(
                            op=op,
                            resource=name,
                            id=uuid.UUID(int=0),
                            status=problem.status,
                            etag=None,
                            outcome="rejected",
                            problem=service.operation_problem(problem),
                        )
                    )
                    continue
                data = _data(resource, record) if isinstance(record, dict) else None
                change = service.Change(op, resource, entry_id, data, basis, at)
                if op == "update" and data is not None:
                    if await service.unknown(session, resource, scope, entry_id):
                        # An entry the server never stored (its create was refused): the
                        # whole record is there to create it now.
                        change = service.Change("create", resource, entry_id, data, basis, at)
                    else:
                        # The columns changed on the phone, as WatermelonDB's `_changed` names
                        # them: the others are as last pulled.
                        changed = set(str(record.get("_changed") or "").split(",")) - {""}
                        if changed:
                            edit = {k: v for k, v in data.items() if k in changed}
                            change = service.Change(op, resource, entry_id, edit, basis, at)
                result = await service.apply_change(session, scope, settings, change)
                results.setdefault(name, []).append(result)
                if result.outcome in ("conflict", "rejected"):
                    rejected.setdefault(name, []).append(str(entry_id))
    return WatermelonPushResult(experimentalRejectedIds=rejected, results=results)
