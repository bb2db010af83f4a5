"""The patient's journal: five kinds of entry, each owned by one patient.

Every entry carries ``seq``, the owner's change sequence at its last write (see
``api.models.sync``), and ``version`` for ETags. Each table has two indexes that start with the
owner: one for lists (newest first by the entry's own time, then id) and one for sync (by seq).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from api.assessments.scoring import Instrument
from api.models.base import Base, TimestampMixin


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=16,
        name=name,
        create_constraint=True,
        values_callable=lambda members: [m.value for m in members],
    )


class Route(StrEnum):
    IV = "iv"
    IM = "im"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"
    INTRANASAL = "intranasal"
    OTHER = "other"


class Setting(StrEnum):
    CLINIC = "clinic"
    HOME = "home"
    OTHER = "other"


class IntentionStatus(StrEnum):
    ACTIVE = "active"
    REVISITED = "revisited"
    ARCHIVED = "archived"


class JournalEntry(TimestampMixin, Base):
    __abstract__ = True
    # The column an entry is listed and filtered by (its own time, not the server's).
    time_column: str
    # Free-text columns stored encrypted (api.crypto), and how each decodes: "text" or "json".
    encrypted: ClassVar[dict[str, str]] = {}

    # Ids may come from the client (offline first), so no default here: the service sets one.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(BigInteger)
    # Its own time lay more than 5 minutes in the future when a sync sent it (a phone's clock
    # ran ahead): stored at the server's receipt time instead (api.sync).
    clock_adjusted: Mapped[bool] = mapped_column(Boolean, default=False)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__
        return (
            Index(f"ix_{table}_owner_time", "owner_id", cls.time_column, "id"),
            Index(f"ix_{table}_owner_seq", "owner_id", "seq"),
            *cls.extra_indexes(),
        )

    @classmethod
    def extra_indexes(cls) -> tuple[Index, ...]:
        return ()


def shared(entries: Any) -> ColumnElement[bool]:
    """Private entries never leave their owner: the condition of every read outside the owner's
    own scope. ``entries`` is a journal model or its table's columns (``table.c``)."""
    return entries.private.is_(False)  # type: ignore[no-any-return]


def visible_to(entries: Any, owner: Any, include_private: bool) -> ColumnElement[bool]:
    """The rows a scope may see: its owner's entries (``owner`` a value or a bound parameter),
    private ones only when the scope includes them (the owner's own)."""
    mine = entries.owner_id == owner
    return mine if include_private else and_(mine, shared(entries))


class SessionLinked:
    """Entries that may name a dosing session; lists filter by it through their own index."""

    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dosing_sessions.id", ondelete="SET NULL"), default=None
    )

    @classmethod
    def extra_indexes(cls) -> tuple[Index, ...]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        time_column = cls.time_column  # type: ignore[attr-defined]
        return (
            Index(f"ix_{table}_owner_session_time", "owner_id", "session_id", time_column, "id"),
        )


class DosingSession(JournalEntry):
    __tablename__ = "dosing_sessions"
    time_column = "started_at"
    encrypted: ClassVar[dict[str, str]] = {"notes": "text"}

    started_at: Mapped[datetime]
    # When the acute effects were over; unknown, the summary takes started_at + 2 hours.
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    route: Mapped[Route] = mapped_column(_enum(Route, "route"))
    dose_mg: Mapped[float | None] = mapped_column(Float, default=None)
    setting: Mapped[Setting] = mapped_column(_enum(Setting, "setting"))
    notes: Mapped[str | None] = mapped_column(Text, default=None)


class Intention(SessionLinked, JournalEntry):
    __tablename__ = "intentions"
    time_column = "set_at"
    encrypted: ClassVar[dict[str, str]] = {"text": "text"}

    set_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[IntentionStatus] = mapped_column(_enum(IntentionStatus, "status"))


class Reflection(SessionLinked, JournalEntry):
    __tablename__ = "reflections"
    time_column = "written_at"
    encrypted: ClassVar[dict[str, str]] = {"text": "text", "prompts": "json", "emotions": "json"}

    written_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    # Lists, kept as encrypted JSON text: see api.crypto.
    prompts: Mapped[Any] = mapped_column(Text)
    emotions: Mapped[Any] = mapped_column(Text)
    intention_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class Checkin(JournalEntry):
    __tablename__ = "checkins"
    time_column = "recorded_at"
    encrypted: ClassVar[dict[str, str]] = {"note": "text"}

    recorded_at: Mapped[datetime]
    mood: Mapped[int] = mapped_column(Integer)
    anxiety: Mapped[int | None] = mapped_column(Integer, default=None)
    energy: Mapped[int | None] = mapped_column(Integer, default=None)
    sleep_hours: Mapped[float | None] = mapped_column(Float, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    # Recorded more than 24 hours before the server received it.
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False)


class Assessment(JournalEntry):
    __tablename__ = "assessments"
    time_column = "completed_at"

    completed_at: Mapped[datetime]
    instrument: Mapped[Instrument] = mapped_column(_enum(Instrument, "instrument"))
    answers: Mapped[list[int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(32))
    safety_flag: Mapped[bool] = mapped_column(Boolean)
    # PCL-5 only: endorsed items per DSM-5 cluster, and the provisional results.
    clusters: Mapped[dict[str, int] | None] = mapped_column(JSON, default=None)
    provisional_positive: Mapped[bool | None] = mapped_column(Boolean, default=None)
    provisional_diagnosis: Mapped[bool | None] = mapped_column(Boolean, default=None)


JOURNAL_MODELS: tuple[type[JournalEntry], ...] = (
    DosingSession,
    Intention,
    Reflection,
    Checkin,
    Assessment,
)
