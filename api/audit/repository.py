"""Writing the audit trail (only ever inserts) and reading it back for the patient it is about."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, bindparam, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import Account, AuditOutcome, AuditRecord
from api.models.base import table_of, utcnow


async def append(session: AsyncSession, record: AuditRecord) -> None:
    # A plain INSERT: the record is never read back in the request, so no unit of work.
    connection = await session.connection()
    await connection.execute(APPEND, audit_values(record))


def audit_values(record: AuditRecord) -> dict[str, object]:
    """``APPEND``'s parameters for ``record`` (``audit_<column>``), its id made when it has none."""
    values = {f"audit_{column.name}": getattr(record, column.name) for column in _TABLE.c}
    values["audit_id"] = values["audit_id"] or uuid.uuid4()
    return values


async def record_seen(
    session: AsyncSession,
    request_id: str,
    therapist_id: uuid.UUID,
    grants: Iterable[tuple[uuid.UUID, uuid.UUID]],
    resource: str,
    action: str,
) -> None:
    """Record, for each (patient, grant), that a therapist saw the patient without reading
    entries: listed among their patients ("patients", "list"), or opened their journal with a
    read token ("grant", "open"). The patient's access log shows both."""
    for patient_id, grant_id in grants:
        await append(
            session,
            AuditRecord(
                at=utcnow(),
                request_id=request_id,
                therapist_id=therapist_id,
                patient_id=patient_id,
                grant_id=grant_id,
                resource=resource,
                action=action,
                entry_ids=[],
                count=0,
                outcome=AuditOutcome.ALLOWED.value,
            ),
        )


_TABLE = table_of(AuditRecord)
# Built once (SQLAlchemy's compiled cache serves it from then on).
APPEND = insert(_TABLE).values(
    {column: bindparam(f"audit_{column.name}", type_=column.type) for column in _TABLE.c}
)


class AccessRow(NamedTuple):
    """An access-log record with its therapist as their account says now (None once deleted)."""

    record: AuditRecord
    name: str | None
    email: str | None
    verified: bool | None
    clinic: str | None


def _about(patient_id: uuid.UUID) -> Select[AuditRecord, str, str, bool, str | None]:
    # Outer join: a therapist whose account was deleted still appears, by id alone.
    return (
        select(AuditRecord, Account.display_name, Account.email, Account.verified, Account.clinic)
        .outerjoin(Account, Account.id == AuditRecord.therapist_id)
        .where(AuditRecord.patient_id == patient_id)
    )


async def every_for_patient(session: AsyncSession, patient_id: uuid.UUID) -> list[AccessRow]:
    statement = _about(patient_id).order_by(AuditRecord.at, AuditRecord.id)
    return [AccessRow(*row) for row in await session.execute(statement)]


async def page_for_patient(
    session: AsyncSession,
    patient_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[AccessRow], bool]:
    statement = _about(patient_id)
    if after is not None:
        statement = statement.where(tuple_(AuditRecord.at, AuditRecord.id) < tuple_(*after))
    statement = statement.order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit + 1)
    rows = [AccessRow(*row) for row in await session.execute(statement)]
    return rows[:limit], len(rows) > limit
