"""Every read and write of journal entries starts from the rows its caller may see.

A ``Scope`` names whose entries, and whether private ones are included: the owner's own scope
includes them and may write; any other scope sees shared entries only and cannot write. There is
no query in this module that does not begin with ``_visible()`` or ``_visible_rows()`` (the same
rows as plain columns); both say who sees what with ``api.models.journal.visible_to``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import (
    Select,
    bindparam,
    delete,
    exists,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import ReturningInsert

from api.crypto import UNREADABLE_TEXT, UnreadableValue, associated_data
from api.database import cipher_of
from api.journal import idempotency
from api.models import ChangeCounter, DosingSession, Intention, JournalEntry, Reflection, Tombstone
from api.models.base import table_of, utcnow
from api.models.journal import visible_to

EntryT = TypeVar("EntryT", bound=JournalEntry)
# The kinds of entry that may name a dosing session (``session_id``).
SESSION_LINKED: tuple[type[Intention] | type[Reflection], ...] = (Intention, Reflection)
logger = structlog.get_logger("api.journal")


@dataclass(frozen=True)
class Scope:
    owner_id: uuid.UUID
    include_private: bool
    writable: bool
    # The kinds of entry (resource names) this scope may read; None: every kind (the owner's).
    kinds: frozenset[str] | None = None

    @classmethod
    def own(cls, account_id: uuid.UUID) -> Scope:
        return cls(owner_id=account_id, include_private=True, writable=True)

    @classmethod
    def shared(cls, patient_id: uuid.UUID, kinds: frozenset[str]) -> Scope:
        return cls(owner_id=patient_id, include_private=False, writable=False, kinds=kinds)

    def reads(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


class EntryRow:
    """An entry read for display: its columns as attributes, free text already decrypted.

    Lists, sync and export read many rows and change none, so they skip the ORM's objects
    (identity map, change tracking) and take plain rows; anything that writes loads the entry
    itself (``EntryRepository.get``).
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


# What lists and reads hand to a resource's presentation: a loaded entry or a plain row.
Entry = JournalEntry | EntryRow


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: tuple[datetime, uuid.UUID] | None = None
    since: datetime | None = None
    until: datetime | None = None
    session_id: uuid.UUID | None = None

    def filters(self) -> dict[str, bool]:
        """Which of ``page_statement``'s conditions this request needs."""
        return {
            "since": self.since is not None,
            "until": self.until is not None,
            "by_session": self.session_id is not None,
            "after": self.after is not None,
        }

    def params(self, owner_id: uuid.UUID) -> dict[str, Any]:
        """``page_statement``'s parameters, for ``owner_id``'s entries: one row more than the
        page, to tell whether more follow."""
        after_time, after_id = self.after or (None, None)
        return {
            "scope_owner": owner_id,
            "since": self.since,
            "until": self.until,
            "session_id": self.session_id,
            "after_time": after_time,
            "after_id": after_id,
            "row_limit": self.limit + 1,
        }


async def next_seq(session: AsyncSession, owner_id: uuid.UUID) -> int:
    """Take the owner's next change number; the counter row stays locked until commit (see
    ``api.models.sync``)."""
    connection = await session.connection()
    result = await connection.execute(
        next_seq_statement(connection.dialect.name), {"counter_owner": owner_id}
    )
    return int(result.scalar_one())


@functools.cache
def next_seq_statement(dialect: str) -> ReturningInsert[int]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    counters = table_of(ChangeCounter)
    return (
        insert(counters)
        .values(owner_id=bindparam("counter_owner"), last_seq=1)
        .on_conflict_do_update(
            index_elements=[counters.c.owner_id], set_={"last_seq": counters.c.last_seq + 1}
        )
        .returning(counters.c.last_seq)
    )


class EntryRepository(Generic[EntryT]):
    def __init__(self, session: AsyncSession, model: type[EntryT], scope: Scope) -> None:
        self.session = session
        self.model = model
        self.scope = scope

    def _visible(self) -> Select[EntryT]:
        scope = self.scope
        return select(self.model).where(
            visible_to(self.model, scope.owner_id, scope.include_private)
        )

    async def _rows(self, statement: Select[Any], **params: Any) -> list[EntryRow]:
        """Plain rows of a statement built on ``_visible_rows(self.model,
        self.scope.include_private)``, once per shape: only the values change from one request
        to the next. The scope's owner is bound last, so no parameter can stand in for it."""
        connection = await self.session.connection()
        result = await connection.execute(statement, {**params, "scope_owner": self.scope.owner_id})
        return [self._open_row(dict(row)) for row in result.mappings()]

    def _require_writable(self) -> None:
        if not self.scope.writable:
            raise PermissionError("this scope is read-only")

    def _seal(self, entry_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
        """Encrypt the free-text values about to be written (api.crypto)."""
        cipher = cipher_of(self.session)
        sealed = dict(values)
        for column, kind in self.model.encrypted.items():
            value = values.get(column)
            if value is None:
                continue
            plain = value if kind == "text" else json.dumps(value, ensure_ascii=False)
            aad = associated_data(self.model.__tablename__, column, entry_id, self.scope.owner_id)
            sealed[column] = cipher.encrypt(plain, aad)
        return sealed

    def _decrypted(self, entry_id: uuid.UUID, owner_id: uuid.UUID, stored: Any) -> dict[str, Any]:
        """The plain values of the encrypted columns in ``stored`` (a row's values or an entry)."""
        cipher = cipher_of(self.session)
        table = self.model.__tablename__
        plain_values: dict[str, Any] = {}
        for column, kind in self.model.encrypted.items():
            sealed = stored[column] if isinstance(stored, dict) else getattr(stored, column)
            if sealed is None:
                continue
            try:
                plain = cipher.decrypt(sealed, associated_data(table, column, entry_id, owner_id))
                value: Any = plain if kind == "text" else json.loads(plain)
            except UnreadableValue as exc:
                logger.error(
                    "unreadable value",
                    table=table,
                    column=column,
                    row_id=str(entry_id),
                    reason=str(exc),
                )
                value = UNREADABLE_TEXT if kind == "text" else []
            plain_values[column] = value
        return plain_values

    def _open(self, entry: EntryT) -> EntryT:
        """Decrypt a loaded entry in place, once, without marking it changed."""
        state = inspect(entry)
        if state.info.get("opened"):
            return entry
        for column, value in self._decrypted(entry.id, entry.owner_id, entry).items():
            set_committed_value(entry, column, value)
        state.info["opened"] = True
        return entry

    def open_rows(self, rows: list[dict[str, Any]]) -> list[EntryRow]:
        """Rows read by a statement of its own (``api.patients.reads``), decrypted."""
        return [self._open_row(dict(row)) for row in rows]

    def _open_row(self, values: dict[str, Any]) -> EntryRow:
        for column, plain in self._decrypted(values["id"], values["owner_id"], values).items():
            values[column] = plain
        return EntryRow(values)

    async def get(self, entry_id: uuid.UUID) -> EntryT | None:
        result: EntryT | None = await self.session.scalar(
            self._visible().where(self.model.id == entry_id)
        )
        return self._open(result) if result is not None else None

    async def existing_ids(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        statement = self._visible().with_only_columns(self.model.id).where(self.model.id.in_(ids))
        return set((await self.session.scalars(statement)).all())

    async def page(self, request: PageRequest) -> tuple[list[EntryRow], bool]:
        """Newest first by the entry's own time, then id; returns (rows, whether more follow).

        A ``session_id`` filter naming a session this scope cannot read (a private one, or any
        when sessions are not among its kinds) matches nothing, exactly as an id that does not
        exist: what it links to must not show through the filter.
        """
        if request.session_id is not None and not await self._session_readable(request.session_id):
            return [], False
        statement = page_statement(self.model, self.scope.include_private, **request.filters())
        params = request.params(self.scope.owner_id)
        del params["scope_owner"]  # bound by ``_rows``, last
        rows = await self._rows(statement, **params)
        return rows[: request.limit], len(rows) > request.limit

    async def _session_readable(self, session_id: uuid.UUID) -> bool:
        if self.scope.include_private:
            return True  # the owner's own filter: a missing id simply matches nothing
        if not self.scope.reads("sessions"):
            return False
        sessions = EntryRepository(self.session, DosingSession, self.scope)
        return bool(await sessions.existing_ids([session_id]))

    async def rows(self, *columns: Any, where: tuple[Any, ...] = ()) -> list[Any]:
        """Selected columns of the visible rows: for figures that need no whole entries."""
        statement = self._visible().with_only_columns(*columns).where(*where)
        return list((await self.session.execute(statement)).all())

    async def every(self) -> list[EntryRow]:
        """All visible entries, oldest first: for the patient's export."""
        return await self._rows(_everything(self.model, self.scope.include_private))

    async def changed_since(self, seq: int, limit: int) -> list[EntryRow]:
        return await self._rows(
            _changed_since(self.model, self.scope.include_private), after_seq=seq, row_limit=limit
        )

    async def add(
        self, entry_id: uuid.UUID, values: dict[str, Any], now: datetime
    ) -> EntryRow | None:
        """Insert a new entry at the owner's next change number; None when the id is taken (by
        an entry of this owner's or anyone else's, or by one deleted), with nothing written but
        that number. One statement: the row goes in unless the id is in use or tombstoned."""
        row_values = self.new_row(entry_id, values, now)
        row_values["seq"] = await next_seq(self.session, self.scope.owner_id)
        connection = await self.session.connection()
        statement = insert_unless_deleted(self.model, connection.dialect.name, tuple(row_values))
        inserted = (await connection.execute(statement, row_values)).mappings().first()
        return None if inserted is None else self.as_written(dict(inserted), values)

    def new_row(self, entry_id: uuid.UUID, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The columns of a new entry but its change number: ``values`` sealed, the defaults of
        what was not sent, its identity and first version."""
        self._require_writable()
        # The entry's identity last, so no value sent can stand in for it.
        return {
            **_scalar_defaults(self.model),
            **self._seal(entry_id, values),
            "id": entry_id,
            "owner_id": self.scope.owner_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }

    def as_written(self, stored: dict[str, Any], values: dict[str, Any]) -> EntryRow:
        """The entry as stored (``stored``: its columns), with the free text as sent rather
        than decrypting what was just encrypted."""
        stored.update(
            {column: values[column] for column in self.model.encrypted if column in values}
        )
        return EntryRow(stored)

    async def update(
        self, entry: EntryT, expected_version: int, values: dict[str, Any]
    ) -> EntryT | None:
        """Apply ``values`` if the entry is still at ``expected_version``; None when it moved on."""
        self._require_writable()
        seq = await next_seq(self.session, self.scope.owner_id)
        statement = (
            update(self.model)
            .where(
                self.model.id == entry.id,
                self.model.owner_id == self.scope.owner_id,
                self.model.version == expected_version,
            )
            .values(
                **self._seal(entry.id, values),
                version=expected_version + 1,
                seq=seq,
                updated_at=utcnow(),
            )
            .returning(self.model)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        updated: EntryT | None = (await self.session.scalars(statement)).one_or_none()
        if updated is None:
            return None
        inspect(updated).info["opened"] = False  # reloaded from the row: sealed again
        return self._open(updated)

    async def delete(self, entry: EntryT, expected_version: int, resource: str) -> bool:
        """Delete at ``expected_version`` and leave a tombstone; False when it moved on."""
        self._require_writable()
        if self.model is DosingSession:
            await self._unlink_session(entry.id)
        result = await self.session.execute(
            delete(self.model)
            .where(
                self.model.id == entry.id,
                self.model.owner_id == self.scope.owner_id,
                self.model.version == expected_version,
            )
            .returning(self.model.id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return False
        seq = await next_seq(self.session, self.scope.owner_id)
        self.session.add(
            Tombstone(id=entry.id, owner_id=self.scope.owner_id, resource=resource, seq=seq)
        )
        # The stored first answer repeats what the entry said: it goes with the entry.
        await idempotency.forget(self.session, self.scope.owner_id, [entry.id])
        await self.session.flush()
        self.session.expunge(entry)
        return True

    async def _unlink_session(self, session_id: uuid.UUID) -> None:
        """Entries naming a dosing session about to be deleted lose the link as an edit of
        their own: a new version (so a new ETag) and a change number each, so sync tells every
        device. (The foreign key would null it too, but silently: no version, no change.)"""
        owner_id = self.scope.owner_id
        for model in SESSION_LINKED:
            linked = await self.session.scalars(
                select(model.id)
                .where(model.owner_id == owner_id, model.session_id == session_id)
                .order_by(model.id)
            )
            for linked_id in linked.all():
                seq = await next_seq(self.session, owner_id)
                await self.session.execute(
                    update(model)
                    .where(model.id == linked_id, model.owner_id == owner_id)
                    .values(
                        session_id=None, version=model.version + 1, seq=seq, updated_at=utcnow()
                    )
                    .execution_options(synchronize_session=False)
                )


# Reads of many rows, as statements built once per model and shape, the scope's owner and the
# filters bound at execution: what the API and sync run most, with no statement to build.


@functools.cache
def _scalar_defaults(model: type[JournalEntry]) -> dict[str, Any]:
    """The columns' plain default values (``private``, ``version``...), for values not sent."""
    return {
        column.name: column.default.arg  # type: ignore[attr-defined]
        for column in table_of(model).c
        if column.default is not None and column.default.is_scalar
    }


@functools.cache
def insert_unless_deleted(
    model: type[JournalEntry], dialect: str, columns: tuple[str, ...]
) -> ReturningInsert[Any]:
    """INSERT of one entry, its values bound by column name, unless its id is in use or
    tombstoned: built once per resource, as every create sends the same columns."""
    table = table_of(model)
    unset = [c.name for c in table.c if c.default is not None and c.name not in columns]
    if unset:
        raise TypeError(f"{model.__name__} insert: no value for {', '.join(unset)}")
    tombstones = table_of(Tombstone)
    values = select(*(bindparam(name, type_=table.c[name].type).label(name) for name in columns))
    unless_deleted = values.where(
        ~exists().where(
            tombstones.c.owner_id == bindparam("owner_id"), tombstones.c.id == bindparam("id")
        )
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .from_select(list(columns), unless_deleted, include_defaults=False)
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(*table.c)
    )


@functools.cache
def _column_keys(model: type[JournalEntry]) -> tuple[str, ...]:
    return tuple(column.key for column in table_of(model).c)


def entry_rows(found: Sequence[Any], model: type[JournalEntry], skip: int) -> list[dict[str, Any]]:
    """The entries of a statement whose rows are ``skip`` columns of its own followed by every
    column of ``model``'s table (``api.journal.lists``, ``api.patients.reads``), as values by
    column; the row an outer join gives when there is no entry (its id null) left out."""
    keys = _column_keys(model)
    id_at = skip + keys.index("id")
    return [dict(zip(keys, row[skip:], strict=True)) for row in found if row[id_at] is not None]


@functools.cache
def _visible_rows(model: type[JournalEntry], include_private: bool) -> Select[Any]:
    """What ``EntryRepository._visible()`` selects, as plain columns (named as the model's
    attributes), for the owner bound as ``scope_owner``. Built on the table, not the mapped
    class, so SQLAlchemy runs it as plain SQL, without the ORM's machinery."""
    table = table_of(model)
    return select(*table.c).where(visible_to(table.c, bindparam("scope_owner"), include_private))


@functools.cache
def page_statement(
    model: type[JournalEntry],
    include_private: bool,
    *,
    since: bool,
    until: bool,
    by_session: bool,
    after: bool,
) -> Select[Any]:
    table = table_of(model)
    time, entry_id = table.c[model.time_column], table.c.id
    statement = _visible_rows(model, include_private)
    if since:
        statement = statement.where(time >= bindparam("since", type_=time.type))
    if until:
        statement = statement.where(time < bindparam("until", type_=time.type))
    if by_session:
        session_id = table.c.session_id
        statement = statement.where(session_id == bindparam("session_id", type_=session_id.type))
    if after:
        # Keyset: strictly after the last row of the previous page, so rows added since
        # cannot shift the pages (no duplicates, nothing that existed skipped).
        last = tuple_(
            bindparam("after_time", type_=time.type), bindparam("after_id", type_=entry_id.type)
        )
        statement = statement.where(tuple_(time, entry_id) < last)
    return statement.order_by(time.desc(), entry_id.desc()).limit(bindparam("row_limit"))


@functools.cache
def _changed_since(model: type[JournalEntry], include_private: bool) -> Select[Any]:
    seq = table_of(model).c.seq
    return (
        _visible_rows(model, include_private)
        .where(seq > bindparam("after_seq"))
        .order_by(seq)
        .limit(bindparam("row_limit"))
    )


@functools.cache
def _everything(model: type[JournalEntry], include_private: bool) -> Select[Any]:
    table = table_of(model)
    return _visible_rows(model, include_private).order_by(table.c[model.time_column], table.c.id)


async def is_deleted(session: AsyncSession, scope: Scope, entry_id: uuid.UUID) -> bool:
    """Whether the scope's owner deleted an entry with this id."""
    found = await session.scalar(
        select(Tombstone.id).where(Tombstone.owner_id == scope.owner_id, Tombstone.id == entry_id)
    )
    return found is not None


async def tombstones_since(
    session: AsyncSession, scope: Scope, seq: int, limit: int
) -> list[Tombstone]:
    statement = (
        select(Tombstone)
        .where(Tombstone.owner_id == scope.owner_id, Tombstone.seq > seq)
        .order_by(Tombstone.seq)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())
