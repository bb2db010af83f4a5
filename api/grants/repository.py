"""Grants as each party sees them: a patient the grants given, a therapist the grants received."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Select, bindparam, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.models import Account, Grant, Login, RevokedReadToken, Role
from api.models.base import table_of

PatientAccount = aliased(Account, name="patient_account")
TherapistAccount = aliased(Account, name="therapist_account")


class GrantRow(NamedTuple):
    """A grant with the names each party is shown by."""

    grant: Grant
    patient_name: str
    therapist_name: str
    therapist_email: str
    therapist_verified: bool
    therapist_clinic: str | None


class GrantRepository:
    def __init__(self, session: AsyncSession, account_id: uuid.UUID, role: Role) -> None:
        self.session = session
        self.account_id = account_id
        self.role = role

    def _visible(self) -> Select[Grant, str, str, str, bool, str | None]:
        # A patient sees their own name as it is now; a therapist, as the grant keeps it (frozen
        # when the grant ended).
        patient_name = (
            PatientAccount.display_name if self.role is Role.PATIENT else Grant.patient_name
        )
        statement = select(
            Grant,
            patient_name,
            TherapistAccount.display_name,
            TherapistAccount.email,
            TherapistAccount.verified,
            TherapistAccount.clinic,
        ).join(TherapistAccount, TherapistAccount.id == Grant.therapist_id)
        if self.role is Role.PATIENT:
            statement = statement.join(PatientAccount, PatientAccount.id == Grant.patient_id)
        column = Grant.patient_id if self.role is Role.PATIENT else Grant.therapist_id
        return statement.where(column == self.account_id)

    async def get(self, grant_id: uuid.UUID) -> GrantRow | None:
        row = (
            await self.session.execute(self._visible().where(Grant.id == grant_id))
        ).one_or_none()
        return None if row is None else GrantRow(*row)

    async def page(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[GrantRow], bool]:
        statement = self._visible()
        if after is not None:
            statement = statement.where(tuple_(Grant.created_at, Grant.id) < tuple_(*after))
        statement = statement.order_by(Grant.created_at.desc(), Grant.id.desc()).limit(limit + 1)
        rows = [GrantRow(*row) for row in await self.session.execute(statement)]
        return rows[:limit], len(rows) > limit

    async def every(self) -> list[GrantRow]:
        statement = self._visible().order_by(Grant.created_at, Grant.id)
        return [GrantRow(*row) for row in await self.session.execute(statement)]

    async def active_patients(self, now: datetime) -> list[GrantRow]:
        """A therapist's live grants, one row per grant, with the patient's display name."""
        statement = self._visible().where(Grant.revoked_at.is_(None), Grant.expires_at > now)
        ordered = statement.order_by(Grant.patient_name, Grant.id)
        return [GrantRow(*row) for row in await self.session.execute(ordered)]


async def grant_is_live(
    session: AsyncSession,
    grant_id: uuid.UUID,
    therapist_id: uuid.UUID,
    patient_id: uuid.UUID,
    login_id: uuid.UUID,
    jti: str | None,
    now: datetime,
) -> bool:
    """Whether the grant a reader holds still stands, the therapist's login is still live and
    the read token was not revoked: re-checked on every therapist request, in one statement."""
    connection = await session.connection()
    found = await connection.execute(
        LIVE_GRANT, live_grant_values(grant_id, therapist_id, patient_id, login_id, jti, now)
    )
    return found.first() is not None


def live_grant_values(
    grant_id: uuid.UUID,
    therapist_id: uuid.UUID,
    patient_id: uuid.UUID,
    login_id: uuid.UUID,
    jti: str | None,
    now: datetime,
) -> dict[str, object]:
    """``LIVE_GRANT``'s parameters, for the statements that check a grant inside themselves
    (``api.patients.reads``)."""
    return {
        "live_grant": grant_id,
        "live_therapist": therapist_id,
        "live_patient": patient_id,
        "live_login": login_id,
        # The web view has no token to revoke: an id no token has never matches.
        "live_jti": jti or "",
        "live_now": now,
    }


# Built once, on the table (plain SQL): every therapist request runs it.
_grants, _logins, _revoked = table_of(Grant), table_of(Login), table_of(RevokedReadToken)
LIVE_GRANT = (
    select(_grants.c.id)
    .join(_logins, _logins.c.account_id == _grants.c.therapist_id)
    .where(
        _grants.c.id == bindparam("live_grant"),
        _grants.c.therapist_id == bindparam("live_therapist"),
        _grants.c.patient_id == bindparam("live_patient"),
        _grants.c.revoked_at.is_(None),
        _grants.c.expires_at > bindparam("live_now"),
        _logins.c.id == bindparam("live_login"),
        _logins.c.revoked_at.is_(None),
        ~exists().where(_revoked.c.jti == bindparam("live_jti")),
    )
)


async def grant_exists(session: AsyncSession, grant_id: uuid.UUID) -> bool:
    return await session.scalar(select(Grant.id).where(Grant.id == grant_id)) is not None


async def reader_is_live(
    session: AsyncSession, therapist_id: uuid.UUID, login_id: uuid.UUID, jti: str | None
) -> bool:
    """Whether the login a read rides on is live and its token not revoked: asked only after
    ``grant_is_live`` said no, to tell an ended token from an ended grant."""
    login = await session.scalar(
        select(Login.id).where(
            Login.id == login_id, Login.account_id == therapist_id, Login.revoked_at.is_(None)
        )
    )
    if login is None:
        return False
    return jti is None or await session.get(RevokedReadToken, jti) is None
