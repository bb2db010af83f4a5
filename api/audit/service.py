"""The access log: the audit trail about one patient, told in plain words."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api import paging
from api.audit.repository import AccessRow, page_for_patient
from api.audit.schemas import AccessLogEntry, AccessLogPage
from api.journal.cursors import encode_cursor
from api.models import AuditOutcome, AuditRecord
from api.resources import RESOURCES

NOUNS = {
    **{resource.name: resource.nouns for resource in RESOURCES},
    "safety_flags": "safety flags",
    # A therapist web page refused at its grant, before any kind of entry was read.
    "grant": "journal",
}
REFUSALS = {
    AuditOutcome.NO_GRANT: "your permission had ended",
    AuditOutcome.INSUFFICIENT_SCOPE: "you had not shared that",
    AuditOutcome.NOT_FOUND: "it was not shared with them or does not exist",
}


def describe(record: AuditRecord, who: str) -> str:
    many = NOUNS.get(record.resource, record.resource)
    if record.outcome != AuditOutcome.ALLOWED:
        what = f"your {'summary' if record.resource == 'summary' else many}"
        verb = "acknowledge one of" if record.action == "acknowledge" else "view"
        return f"{who} tried to {verb} {what}, and was refused: {REFUSALS[AuditOutcome(record.outcome)]}."
    if record.action == "acknowledge":
        return f"{who} acknowledged one of your safety flags: they have seen it."
    if record.resource == "summary":
        return f"{who} viewed your summary."
    if record.resource == "patients":
        return f"{who} saw you in their list of patients."
    if record.action == "open":
        return f"{who} opened your journal to read what you shared."
    if record.action == "read":
        return f"{who} viewed one of your {many}."
    if record.count == 0:
        return f"{who} looked at your {many} and saw none."
    return f"{who} viewed {record.count} of your {many}."


def present(row: AccessRow) -> AccessLogEntry:
    record, name = row.record, row.name
    return AccessLogEntry(
        at=record.at,
        therapist_id=record.therapist_id,
        therapist_name=name,
        therapist_email=row.email,
        therapist_verified=row.verified,
        therapist_clinic=row.clinic,
        grant_id=record.grant_id,
        resource=record.resource,
        action=record.action,
        entry_ids=[uuid.UUID(i) for i in record.entry_ids],
        count=record.count,
        outcome=AuditOutcome(record.outcome),
        description=describe(record, name or "A therapist whose account was deleted"),
        request_id=record.request_id,
    )


async def access_log(
    session: AsyncSession, patient_id: uuid.UUID, limit: int, cursor: str | None
) -> AccessLogPage:
    start = paging.after(cursor)
    rows, more = await page_for_patient(session, patient_id, limit, start)
    last = rows[-1].record if rows and more else None
    return AccessLogPage(
        items=[present(row) for row in rows],
        next_cursor=encode_cursor(last.at, last.id) if last else None,
    )
