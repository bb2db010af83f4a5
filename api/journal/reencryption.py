"""Moving every encrypted value to the newest key, in batches, resumable.

Each batch is its own transaction and picks values not yet under the newest key, so a pass that
stops part way simply continues where it stopped when run again. Values that fail to decrypt
are counted and left as they are, for the operator to look into (they are named in the log).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.crypto import FieldCipher, UnreadableValue, associated_data
from api.models import JOURNAL_MODELS, IdempotencyRecord, JournalEntry, SafetyFlag

logger = structlog.get_logger("api.reencryption")


@dataclass
class Report:
    moved: int = 0
    unreadable: list[str] = field(default_factory=list)
    batches: int = 0
    max_batches: int | None = None

    @property
    def stopped(self) -> bool:
        return self.max_batches is not None and self.batches >= self.max_batches


async def _column_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    model: Any,
    column: str,
    batch_size: int,
    report: Report,
) -> None:
    table = model.__tablename__
    attribute = getattr(model, column)
    skipped: list[Any] = []
    while not report.stopped:
        async with sessionmaker() as session, session.begin():
            statement = (
                select(model.id, model.owner_id, attribute)
                .where(attribute.is_not(None), attribute.not_like(f"v1.{cipher.current_kid}.%"))
                .order_by(model.id)
                .limit(batch_size)
            )
            if skipped:
                statement = statement.where(model.id.not_in(skipped))
            rows = (await session.execute(statement)).all()
            if not rows:
                return
            report.batches += 1
            for row_id, owner_id, stored in rows:
                aad = associated_data(table, column, row_id, owner_id)
                try:
                    fresh = cipher.encrypt(cipher.decrypt(stored, aad), aad)
                except UnreadableValue as exc:
                    logger.error(
                        "unreadable value",
                        table=table,
                        column=column,
                        row_id=str(row_id),
                        reason=str(exc),
                    )
                    skipped.append(row_id)
                    report.unreadable.append(f"{table}.{column}:{row_id}")
                    continue
                await session.execute(
                    update(model).where(model.id == row_id).values({column: fresh})
                )
                report.moved += 1


async def _idempotency_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    batch_size: int,
    report: Report,
) -> None:
    skipped: set[tuple[Any, str]] = set()
    while not report.stopped:
        async with sessionmaker() as session, session.begin():
            statement = (
                select(IdempotencyRecord.owner_id, IdempotencyRecord.key, IdempotencyRecord.body)
                .where(
                    IdempotencyRecord.body != "",
                    IdempotencyRecord.body.not_like(f"v1.{cipher.current_kid}.%"),
                )
                .order_by(IdempotencyRecord.owner_id, IdempotencyRecord.key)
                .limit(batch_size + len(skipped))
            )
            rows = [
                row
                for row in (await session.execute(statement)).all()
                if (row[0], row[1]) not in skipped
            ]
            if not rows:
                return
            report.batches += 1
            for owner_id, key, stored in rows[:batch_size]:
                aad = associated_data("idempotency_records", "body", key, owner_id)
                try:
                    fresh = cipher.encrypt(cipher.decrypt(stored, aad), aad)
                except UnreadableValue:
                    skipped.add((owner_id, key))
                    report.unreadable.append(f"idempotency_records.body:{owner_id}")
                    continue
                await session.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
                    .values(body=fresh)
                )
                report.moved += 1


async def reencrypt(
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: FieldCipher,
    batch_size: int = 500,
    max_batches: int | None = None,
) -> Report:
    """One pass, or the first ``max_batches`` batches of one: run again to go on."""
    report = Report(max_batches=max_batches)
    models: tuple[type[JournalEntry] | type[SafetyFlag], ...] = (*JOURNAL_MODELS, SafetyFlag)
    for model in models:
        for column in model.encrypted:
            await _column_pass(sessionmaker, cipher, model, column, batch_size, report)
    await _idempotency_pass(sessionmaker, cipher, batch_size, report)
    return report
