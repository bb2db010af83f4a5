"""A patient's new entry as one write: the login's liveness, the change number, the entry and the
idempotency record, in one statement on PostgreSQL and as separate statements elsewhere.

``write`` runs ``EntryWrite`` on the request's connection, in its transaction. On PostgreSQL the
four steps are data-modifying CTEs of one statement: the login checked live (the account row
held, as ``AccountRepository.role_with_live_login(for_write=True)`` holds it), the owner's next
change number, the entry unless its id is in use or tombstoned, and the record of the first
answer when the request carries a key. On SQLite (no network: a round trip costs little) the
same steps run one after the other. Either way ``Outcome`` says what happened, and the steps
that did not happen wrote nothing: a login that is not live (or not a patient's) takes no
number; an id in use takes a number and writes nothing else; a key already taken leaves the
entry written, for the caller to roll back and replay, as ``api.journal.idempotency`` does.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, literal, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from api.accounts.repository import ROLE_WITH_LIVE_LOGIN_FOR_WRITE
from api.journal.idempotency import record_statement
from api.journal.repository import insert_unless_deleted, next_seq_statement
from api.models import (
    Account,
    ChangeCounter,
    IdempotencyRecord,
    JournalEntry,
    Role,
    Tombstone,
)
from api.models.base import table_of


@dataclass(frozen=True)
class EntryWrite:
    """What one create writes: ``values`` are the entry's columns but its change number (sealed,
    its identity among them); ``record`` the idempotency record's values, bound as
    ``api.journal.idempotency`` binds them, or None without a key."""

    model: type[JournalEntry]
    owner_id: uuid.UUID
    login_id: uuid.UUID
    values: dict[str, Any]
    record: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """``role`` None: the login is not live (nothing written). ``seq``: the number taken.
    ``entry``: the row written, None when its id was in use. ``recorded``: whether the record
    went in (None without a key, or with no entry written)."""

    role: Role | None
    seq: int | None = None
    entry: dict[str, Any] | None = None
    recorded: bool | None = None


async def write(connection: AsyncConnection, entry: EntryWrite) -> Outcome:
    """The write, in one statement where the database allows it (see the module)."""
    if connection.dialect.name == "postgresql":
        return await in_one_statement(connection, entry)
    return await in_steps(connection, entry)


async def in_steps(connection: AsyncConnection, entry: EntryWrite) -> Outcome:
    """The steps as separate statements, in the connection's transaction."""
    dialect = connection.dialect.name
    role = (
        await connection.execute(
            ROLE_WITH_LIVE_LOGIN_FOR_WRITE,
            {"token_account": entry.owner_id, "token_login": entry.login_id},
        )
    ).scalar()
    if role is not Role.PATIENT:
        return Outcome(role=role)
    seq = int(
        (
            await connection.execute(next_seq_statement(dialect), {"counter_owner": entry.owner_id})
        ).scalar_one()
    )
    values = {**entry.values, "seq": seq}
    insert = insert_unless_deleted(entry.model, dialect, tuple(values))
    row = (await connection.execute(insert, values)).mappings().first()
    if row is None:
        return Outcome(role=role, seq=seq)
    recorded = None
    if entry.record is not None:
        recorded = (
            await connection.execute(record_statement(dialect), entry.record)
        ).first() is not None
    return Outcome(role=role, seq=seq, entry=dict(row), recorded=recorded)


async def in_one_statement(connection: AsyncConnection, entry: EntryWrite) -> Outcome:
    """The steps as data-modifying CTEs of one statement (PostgreSQL)."""
    statement = _one_statement(entry.model, tuple(entry.values), entry.record is not None)
    params = {
        **entry.values,
        **(entry.record or {}),
        "token_account": entry.owner_id,
        "token_login": entry.login_id,
    }
    row = (await connection.execute(statement, params)).mappings().one()
    role: Role | None = row["write_role"]
    if role is not Role.PATIENT:
        return Outcome(role=role)
    seq = int(row["write_seq"])
    if row["id"] is None:
        return Outcome(role=role, seq=seq)
    written = {column.key: row[column.key] for column in table_of(entry.model).c}
    recorded = None if entry.record is None else row["write_recorded"] is not None
    return Outcome(role=role, seq=seq, entry=written, recorded=recorded)


_RECORDS, _accounts = table_of(IdempotencyRecord), table_of(Account)


@functools.cache
def _one_statement(model: type[JournalEntry], columns: tuple[str, ...], keyed: bool) -> Select[Any]:
    """Built once per resource, set of columns and whether a key is sent."""
    counters, tombstones, table = table_of(ChangeCounter), table_of(Tombstone), table_of(model)
    # The login's check as every request that may write makes it, the account's id added.
    live = ROLE_WITH_LIVE_LOGIN_FOR_WRITE.add_columns(_accounts.c.id).cte("live")
    counter = (
        postgresql.insert(counters)
        .from_select(
            ["owner_id", "last_seq"],
            select(live.c.id, literal(1)).where(live.c.role == Role.PATIENT),
        )
        .on_conflict_do_update(
            index_elements=[counters.c.owner_id], set_={"last_seq": counters.c.last_seq + 1}
        )
        .returning(counters.c.last_seq)
        .cte("counter")
    )
    values = select(
        *(bindparam(name, type_=table.c[name].type).label(name) for name in columns),
        counter.c.last_seq.label("seq"),
    ).where(
        ~exists().where(
            tombstones.c.owner_id == bindparam("owner_id"), tombstones.c.id == bindparam("id")
        )
    )
    inserted = (
        postgresql.insert(table)
        .from_select([*columns, "seq"], values, include_defaults=False)
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(*table.c)
        .cte("inserted")
    )
    outputs: list[Any] = [
        select(live.c.role).scalar_subquery().label("write_role"),
        select(counter.c.last_seq).scalar_subquery().label("write_seq"),
    ]
    if keyed:
        record = _keyed_record(inserted)
        outputs.append(select(record.c.key).scalar_subquery().label("write_recorded"))
    one = select(literal(1).label("one")).subquery("one")
    return select(*outputs, *inserted.c).select_from(one.outerjoin(inserted, true()))


def _keyed_record(inserted: Any) -> Any:
    """``api.journal.idempotency``'s record, written only when the entry was."""
    values = select(
        bindparam("record_owner", type_=_RECORDS.c.owner_id.type),
        bindparam("record_key", type_=_RECORDS.c.key.type),
        bindparam("record_fingerprint", type_=_RECORDS.c.fingerprint.type),
        bindparam("answer_status", type_=_RECORDS.c.status_code.type),
        bindparam("answer_headers", type_=_RECORDS.c.headers.type),
        bindparam("answer_body", type_=_RECORDS.c.body.type),
        bindparam("record_created_at", type_=_RECORDS.c.created_at.type),
        bindparam("answer_resource", type_=_RECORDS.c.resource_id.type),
    ).where(exists(select(inserted.c.id)))
    return (
        postgresql.insert(_RECORDS)
        .from_select(
            [
                "owner_id",
                "key",
                "fingerprint",
                "status_code",
                "headers",
                "body",
                "created_at",
                "resource_id",
            ],
            values,
        )
        .on_conflict_do_nothing(index_elements=[_RECORDS.c.owner_id, _RECORDS.c.key])
        .returning(_RECORDS.c.key)
        .cte("record")
    )
