"""Change sequences, tombstones and idempotency records: what offline clients rely on.

Why a per-owner counter: a sync cursor is "the last change I have seen". If change numbers came
from a global sequence, a transaction could take number 10, commit after another took and
committed 11, and a client that synced in between would move its cursor past 10 and never see
it. Here every write takes its number by incrementing its owner's row in ``change_counters``;
that row stays locked until the transaction ends, so the next writer for the same owner gets its
number only after the previous one committed or rolled back (and a rollback returns the number).
Numbers for one owner are therefore handed out in commit order, and "everything after my
cursor" can never be missing a write that commits later. A client does see gaps: an entry
written again keeps only the number of its last write, so the numbers of its earlier writes
appear nowhere. Sync is per owner, so nothing
needs a global order. SQLite gets the same guarantee from its single writer.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, utcnow


class ChangeCounter(Base):
    __tablename__ = "change_counters"

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger)


class Tombstone(Base):
    """A deleted entry: its id and kind, never its content."""

    __tablename__ = "tombstones"
    __table_args__ = (Index("ix_tombstones_owner_seq", "owner_id", "seq"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The first answer to a POST with an Idempotency-Key, replayed for every resend.

    Kept for ``JOURNAL_IDEMPOTENCY_TTL_HOURS`` (swept in the background, a bounded batch at a
    time), and removed at once with the entry or grant it answered for (``resource_id``) or
    with the account: it repeats what that entry said.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (
        Index("ix_idempotency_records_created_at", "created_at"),
        Index("ix_idempotency_records_resource_id", "resource_id"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, path and canonical body: the same key with another request is refused.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    headers: Mapped[str] = mapped_column(Text)
    # The answer as sent, encrypted like journal text (it repeats what the entry says).
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the answer created (the id its Location names), if anything: the record goes with it.
    resource_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
