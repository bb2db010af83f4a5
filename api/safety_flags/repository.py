"""Safety flags within a scope: a patient's own (private included) or a therapist's (shared only).

The repository's reads of flags start from ``_visible``: the flags of one patient, joined to
their questionnaire so that a flag on a private questionnaire does not exist for a shared scope.
Three reads do not: ``latest_phq9`` (the scope's questionnaires, by ``visible_to``),
``flag_counts`` (across the patients of a therapist's list: ``shared`` questionnaires only, and
only where a grant carries a flag scope) and ``seen_by_a_therapist`` (grants, not flags). Who sees
which questionnaire is said once, in ``api.models.journal``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.assessments.scoring import PHQ9_SAFETY_ITEM, Instrument
from api.crypto import UNREADABLE_TEXT, UnreadableValue, associated_data
from api.database import cipher_of
from api.journal.repository import Scope
from api.models import Account, Assessment, Grant, ReadScope, SafetyFlag
from api.models.journal import shared, visible_to

# Scopes that let a therapist see (and acknowledge) a patient's flags.
FLAG_SCOPES = (ReadScope.ASSESSMENTS, ReadScope.SUMMARY)
_TABLE = SafetyFlag.__tablename__


class SafetyFlagRepository:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _visible(self) -> Select[SafetyFlag, int, bool, str]:
        statement = (
            select(SafetyFlag, Assessment.total, Assessment.private, Account.display_name)
            .join(Assessment, Assessment.id == SafetyFlag.assessment_id)
            .outerjoin(Account, Account.id == SafetyFlag.acknowledged_by)
            .where(
                SafetyFlag.owner_id == self.scope.owner_id,
                visible_to(Assessment, self.scope.owner_id, self.scope.include_private),
            )
        )
        return statement

    async def raise_flag(
        self, assessment_id: uuid.UUID, item_value: int, completed_at: datetime, at: datetime
    ) -> None:
        if not self.scope.writable:
            raise PermissionError("this scope is read-only")
        self.session.add(
            SafetyFlag(
                owner_id=self.scope.owner_id,
                assessment_id=assessment_id,
                item_value=item_value,
                completed_at=completed_at,
                received_at=at,
            )
        )
        await self.session.flush()

    async def every(self, acknowledged_since: datetime | None = None) -> list[Any]:
        """Rows of (flag, total, private, acknowledger's name), newest received first; with
        ``acknowledged_since``, only open flags and those acknowledged since then."""
        statement = self._visible()
        if acknowledged_since is not None:
            statement = statement.where(
                or_(
                    SafetyFlag.acknowledged_at.is_(None),
                    SafetyFlag.acknowledged_at >= acknowledged_since,
                )
            )
        statement = statement.order_by(SafetyFlag.received_at.desc(), SafetyFlag.id.desc())
        return [self._open(row) for row in (await self.session.execute(statement)).all()]

    async def get(self, flag_id: uuid.UUID) -> Any | None:
        row = (
            await self.session.execute(self._visible().where(SafetyFlag.id == flag_id))
        ).one_or_none()
        return None if row is None else self._open(row)

    async def for_assessment(self, assessment_id: uuid.UUID) -> Any | None:
        statement = self._visible().where(SafetyFlag.assessment_id == assessment_id)
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else self._open(row)

    async def acknowledge(
        self,
        flag_id: uuid.UUID,
        *,
        therapist_id: uuid.UUID,
        grant_id: uuid.UUID | None,
        note: str | None,
        at: datetime,
    ) -> None:
        """Acknowledge an open flag; one already acknowledged keeps its first acknowledgement
        (the condition is in the statement, so two at once cannot both win)."""
        sealed = None
        if note:
            aad = associated_data(_TABLE, "note", flag_id, self.scope.owner_id)
            sealed = cipher_of(self.session).encrypt(note, aad)
        await self.session.execute(
            update(SafetyFlag)
            .where(
                SafetyFlag.id == flag_id,
                SafetyFlag.owner_id == self.scope.owner_id,
                SafetyFlag.acknowledged_at.is_(None),
            )
            .values(
                acknowledged_at=at,
                acknowledged_by=therapist_id,
                acknowledged_grant_id=grant_id,
                note=sealed,
            )
            .execution_options(synchronize_session=False)
        )
        # The next read must see the row as stored, not an object loaded before the update.
        self.session.expire_all()

    async def latest_phq9(self) -> Any | None:
        """The newest PHQ-9 of the scope (ties: the one received last), as a plain row."""
        statement = select(
            Assessment.id, Assessment.total, Assessment.answers, Assessment.completed_at
        ).where(
            visible_to(Assessment, self.scope.owner_id, self.scope.include_private),
            Assessment.instrument == Instrument.PHQ9,
        )
        statement = statement.order_by(
            Assessment.completed_at.desc(), Assessment.created_at.desc(), Assessment.id.desc()
        ).limit(1)
        return (await self.session.execute(statement)).one_or_none()

    def _open(self, row: Any) -> tuple[Any, ...]:
        """The row with the note decrypted for display appended (the flag itself keeps it
        sealed, so nothing is marked changed)."""
        flag, total, private, acknowledger = row
        plain = None
        if flag.note is not None:
            aad = associated_data(_TABLE, "note", flag.id, flag.owner_id)
            try:
                plain = cipher_of(self.session).decrypt(flag.note, aad)
            except UnreadableValue:
                plain = UNREADABLE_TEXT
        return (flag, total, private, acknowledger, plain)


def item_value(answers: list[int]) -> int:
    return answers[PHQ9_SAFETY_ITEM - 1]


class OpenFlags(NamedTuple):
    """A patient's open flags on shared questionnaires, for a therapist's list of patients."""

    open_count: int
    oldest_received_at: datetime | None  # None when the count is 0


async def flag_counts(
    session: AsyncSession, grants: list[Grant]
) -> dict[uuid.UUID, OpenFlags | None]:
    """Open flags on shared questionnaires per patient, for a therapist's list of patients: None
    for a patient whose grant lets the therapist see no flags (no `assessments:read` nor
    `summary:read`), whose flags are not counted."""
    wanted = {scope.value for scope in FLAG_SCOPES}
    counted = [grant.patient_id for grant in grants if wanted & set(grant.scopes)]
    counts: dict[uuid.UUID, OpenFlags | None] = {grant.patient_id: None for grant in grants}
    counts.update(dict.fromkeys(counted, OpenFlags(0, None)))
    if counted:
        counts.update(await _open_counts(session, counted))
    return counts


async def _open_counts(
    session: AsyncSession, patient_ids: list[uuid.UUID]
) -> dict[uuid.UUID, OpenFlags]:
    statement = (
        select(SafetyFlag.owner_id, func.count(), func.min(SafetyFlag.received_at))
        .join(Assessment, Assessment.id == SafetyFlag.assessment_id)
        .where(
            SafetyFlag.owner_id.in_(patient_ids),
            SafetyFlag.acknowledged_at.is_(None),
            shared(Assessment),
        )
        .group_by(SafetyFlag.owner_id)
    )
    return {
        row[0]: OpenFlags(int(row[1]), row[2]) for row in (await session.execute(statement)).all()
    }


async def seen_by_a_therapist(session: AsyncSession, patient_id: uuid.UUID, now: datetime) -> bool:
    """Whether a live grant of this patient's lets some therapist see flags."""
    statement = select(Grant.scopes).where(
        and_(Grant.patient_id == patient_id, Grant.revoked_at.is_(None), Grant.expires_at > now)
    )
    wanted = {scope.value for scope in FLAG_SCOPES}
    return any(wanted & set(scopes) for scopes in (await session.scalars(statement)).all())
