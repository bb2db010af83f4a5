"""Raising safety flags as questionnaires arrive, showing them, and acknowledging them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.journal.repository import Entry, Scope
from api.journal.resource import WriteContext
from api.models.base import utcnow
from api.safety_flags.repository import SafetyFlagRepository, item_value, seen_by_a_therapist
from api.safety_flags.schemas import FlagNotice, FlagState, LatestPhq9, SafetyFlagRead

# Summaries show every open flag, and those acknowledged in this many days.
ACKNOWLEDGED_SHOWN_DAYS = 30


async def raise_on_receipt(context: WriteContext, entry: Entry) -> None:
    """A new questionnaire (not a replay) with item 9 above 0 raises a flag, whatever date it
    says it was completed: called from the one create path that the API and sync share."""
    assessment: Any = entry  # an Assessment's columns, as a stored row or an entry
    if not assessment.safety_flag:
        return
    await SafetyFlagRepository(context.session, context.scope).raise_flag(
        assessment.id, item_value(assessment.answers), assessment.completed_at, context.now
    )


async def notice(session: AsyncSession, scope: Scope, entry: Entry) -> FlagNotice | None:
    """For the answer to the patient's POST: the flag the questionnaire raised, and whether any
    therapist can see it."""
    if not getattr(entry, "safety_flag", False):
        return None
    row = await SafetyFlagRepository(session, scope).for_assessment(entry.id)
    if row is None:  # pragma: no cover - a flagged questionnaire always has its flag
        return None
    flag, _total, private, _name, _note = row
    visible = not private and await seen_by_a_therapist(session, scope.owner_id, utcnow())
    return FlagNotice(id=flag.id, state=_state(flag), visible_to_therapist=visible)


def _state(flag: Any) -> FlagState:
    return FlagState.OPEN if flag.acknowledged_at is None else FlagState.ACKNOWLEDGED


def _present(row: tuple[Any, ...], latest: Any | None, visible: bool | None) -> SafetyFlagRead:
    flag, total, private, acknowledger, note = row
    later = None
    if (
        latest is not None
        and latest.id != flag.assessment_id
        and latest.completed_at > flag.completed_at
    ):
        later = LatestPhq9(
            assessment_id=latest.id,
            total=latest.total,
            item_value=item_value(latest.answers),
            completed_at=latest.completed_at,
        )
    return SafetyFlagRead(
        id=flag.id,
        assessment_id=flag.assessment_id,
        instrument="phq9",
        item_value=flag.item_value,
        total=total,
        completed_at=flag.completed_at,
        received_at=flag.received_at,
        state=_state(flag),
        acknowledged_at=flag.acknowledged_at,
        acknowledged_by=flag.acknowledged_by,
        acknowledged_by_name=acknowledger,
        note=note,
        latest_phq9=later,
        visible_to_therapist=None if visible is None else visible and not private,
    )


async def flags(
    session: AsyncSession,
    scope: Scope,
    *,
    now: datetime,
    recent_only: bool = False,
) -> list[SafetyFlagRead]:
    """Flags within the scope, newest received first. ``recent_only``: the summaries' rule,
    every open flag and those acknowledged in the last 30 days. The patient's own view also says
    whether a therapist can see each one."""
    repository = SafetyFlagRepository(session, scope)
    since = now - timedelta(days=ACKNOWLEDGED_SHOWN_DAYS) if recent_only else None
    rows = await repository.every(acknowledged_since=since)
    if not rows:
        return []
    latest = await repository.latest_phq9()
    shared = (
        await seen_by_a_therapist(session, scope.owner_id, now) if scope.include_private else None
    )
    return [_present(row, latest, shared) for row in rows]


async def acknowledge(
    session: AsyncSession,
    scope: Scope,
    flag_id: uuid.UUID,
    *,
    therapist_id: uuid.UUID,
    grant_id: uuid.UUID | None,
    note: str | None,
) -> SafetyFlagRead | None:
    """Acknowledge a flag the scope can see; None when there is no such flag. A flag already
    acknowledged answers with its first acknowledgement, unchanged."""
    repository = SafetyFlagRepository(session, scope)
    if await repository.get(flag_id) is None:
        return None
    await repository.acknowledge(
        flag_id, therapist_id=therapist_id, grant_id=grant_id, note=note, at=utcnow()
    )
    row = await repository.get(flag_id)
    assert row is not None
    return _present(row, await repository.latest_phq9(), None)
