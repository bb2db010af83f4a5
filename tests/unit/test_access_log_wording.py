"""The access log's sentences (api.audit.service.describe): pure, so checked without a database."""

from __future__ import annotations

import uuid

import pytest

from api.audit.service import describe
from api.models import AuditOutcome, AuditRecord


def record(resource: str, action: str, outcome: AuditOutcome, count: int = 0) -> AuditRecord:
    return AuditRecord(
        request_id="r",
        therapist_id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        grant_id=None,
        resource=resource,
        action=action,
        entry_ids=[],
        count=count,
        outcome=outcome.value,
    )


@pytest.mark.parametrize(
    ("resource", "action", "outcome", "count", "sentence"),
    [
        ("checkins", "list", AuditOutcome.ALLOWED, 3, "Dr Lee viewed 3 of your mood check-ins."),
        (
            "checkins",
            "list",
            AuditOutcome.ALLOWED,
            0,
            "Dr Lee looked at your mood check-ins and saw none.",
        ),
        ("reflections", "read", AuditOutcome.ALLOWED, 1, "Dr Lee viewed one of your reflections."),
        ("summary", "summary", AuditOutcome.ALLOWED, 0, "Dr Lee viewed your summary."),
        (
            "grant",
            "open",
            AuditOutcome.ALLOWED,
            0,
            "Dr Lee opened your journal to read what you shared.",
        ),
        ("patients", "list", AuditOutcome.ALLOWED, 0, "Dr Lee saw you in their list of patients."),
        (
            "summary",
            "summary",
            AuditOutcome.INSUFFICIENT_SCOPE,
            0,
            "Dr Lee tried to view your summary, and was refused: you had not shared that.",
        ),
        (
            "grant",
            "read",
            AuditOutcome.NO_GRANT,
            0,
            "Dr Lee tried to view your journal, and was refused: your permission had ended.",
        ),
    ],
)
def test_each_record_reads_as_a_plain_sentence(
    resource: str, action: str, outcome: AuditOutcome, count: int, sentence: str
) -> None:
    assert describe(record(resource, action, outcome, count), "Dr Lee") == sentence
