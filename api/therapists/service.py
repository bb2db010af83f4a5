"""The operator's side of therapists: invitations, verification, deactivation.

Run from the CLI (``journal therapists ...``), each command in one transaction of its own; the
API only redeems invitations (``redeem``, at sign-up). Invitation codes are 256-bit random
strings shown once; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.repository import AccountRepository
from api.accounts.schemas import normalize_email
from api.database import create_engine
from api.models import Account, Grant, PairingCode, Role, StrayRequest, TherapistInvitation
from api.models.base import utcnow
from api.settings import Settings

INVITATION_LIFETIME = timedelta(days=7)
INVITATION_PREFIX = "inv_"  # makes a leaked code recognisable to secret scanners


class OperatorError(Exception):
    """An operator command that cannot be carried out; the message says why."""


def hash_invitation_code(code: str) -> bytes:
    # A fast hash is enough: the code has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(code.strip().encode()).digest()


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise OperatorError(f"not an email address: {exc}") from None


@dataclass(frozen=True)
class Invited:
    invitation: TherapistInvitation
    code: str


async def invite(
    session: AsyncSession, email: str, name: str, clinic: str | None, now: datetime | None = None
) -> Invited:
    """A new invitation for ``email``; one still pending for the same address is revoked."""
    address = _email(email)
    name, clinic = name.strip(), (clinic.strip() or None) if clinic else None
    if not 1 <= len(name) <= 100 or (clinic is not None and len(clinic) > 100):
        raise OperatorError("the name must be 1-100 characters, the clinic at most 100")
    if await AccountRepository(session).by_email(address) is not None:
        raise OperatorError(
            "an account with this email exists already (an unverified therapist: use `verify`)"
        )
    now = now or utcnow()
    await _revoke_pending(session, address, now)
    code = INVITATION_PREFIX + secrets.token_urlsafe(32)
    invitation = TherapistInvitation(
        email=address,
        display_name=name,
        clinic=clinic,
        code_hash=hash_invitation_code(code),
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    session.add(invitation)
    await session.flush()
    return Invited(invitation, code)


async def _revoke_pending(session: AsyncSession, email: str, now: datetime) -> int:
    result = await session.execute(
        update(TherapistInvitation)
        .where(
            TherapistInvitation.email == email,
            TherapistInvitation.used_at.is_(None),
            TherapistInvitation.revoked_at.is_(None),
            TherapistInvitation.expires_at > now,
        )
        .values(revoked_at=now)
        .returning(TherapistInvitation.id)
    )
    return len(result.all())


async def revoke_invitation(session: AsyncSession, email: str) -> int:
    """Revoke the address's pending invitation; how many there were (0 or 1)."""
    return await _revoke_pending(session, _email(email), utcnow())


async def redeem(session: AsyncSession, code: str, email: str) -> TherapistInvitation | None:
    """Use up the invitation ``code`` names, if it is pending and for ``email``; else None.

    One conditional UPDATE: of two sign-ups racing with the same code, one wins.
    """
    now = utcnow()
    invitation: TherapistInvitation | None = await session.scalar(
        update(TherapistInvitation)
        .where(
            TherapistInvitation.code_hash == hash_invitation_code(code),
            TherapistInvitation.email == email,
            TherapistInvitation.used_at.is_(None),
            TherapistInvitation.revoked_at.is_(None),
            TherapistInvitation.expires_at > now,
        )
        .values(used_at=now)
        .returning(TherapistInvitation)
    )
    return invitation


async def _therapist(session: AsyncSession, email: str) -> Account:
    account = await AccountRepository(session).by_email(_email(email))
    if account is None or account.role is not Role.THERAPIST:
        raise OperatorError("no therapist account with this email")
    return account


async def verify(session: AsyncSession, email: str) -> Account:
    """Mark a therapist verified: from now on they can receive grants and make pairing codes."""
    account = await _therapist(session, email)
    if account.deactivated_at is not None:
        raise OperatorError("this therapist is deactivated")
    account.verified = True
    account.version += 1
    await session.flush()
    return account


async def deactivate(session: AsyncSession, email: str) -> Account:
    """End everything the therapist holds, at once: every login (so every access token, web
    session and read token minted under one), every live grant, every pairing code; and no
    sign-in from now on."""
    account = await _therapist(session, email)
    now = utcnow()
    account.deactivated_at = account.deactivated_at or now
    account.verified = False
    account.version += 1
    await AccountRepository(session).revoke_logins(account.id, keep=None, at=now)
    await session.execute(
        update(Grant)
        .where(Grant.therapist_id == account.id, Grant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by="operator")
    )
    await session.execute(delete(PairingCode).where(PairingCode.therapist_id == account.id))
    await session.flush()
    return account


@dataclass(frozen=True)
class TherapistLine:
    email: str
    name: str
    clinic: str | None
    state: str  # "verified", "unverified", "deactivated", "invited", "invitation expired"
    stray_requests: int


async def listing(session: AsyncSession) -> list[TherapistLine]:
    """Every therapist account and every invitation not yet used, by email."""
    now = utcnow()
    stray = (
        select(StrayRequest.therapist_id, func.count().label("n"))
        .group_by(StrayRequest.therapist_id)
        .subquery()
    )
    accounts = await session.execute(
        select(Account, func.coalesce(stray.c.n, 0))
        .outerjoin(stray, stray.c.therapist_id == Account.id)
        .where(Account.role == Role.THERAPIST)
    )
    lines = [
        TherapistLine(
            account.email,
            account.display_name,
            account.clinic,
            "deactivated"
            if account.deactivated_at is not None
            else ("verified" if account.verified else "unverified"),
            count,
        )
        for account, count in accounts.all()
    ]
    pending = await session.scalars(
        select(TherapistInvitation).where(
            TherapistInvitation.used_at.is_(None), TherapistInvitation.revoked_at.is_(None)
        )
    )
    lines += [
        TherapistLine(
            invitation.email,
            invitation.display_name,
            invitation.clinic,
            "invited" if invitation.expires_at > now else "invitation expired",
            0,
        )
        for invitation in pending.all()
    ]
    return sorted(lines, key=lambda line: (line.email, line.state))


@asynccontextmanager
async def operator_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One transaction on the database, committed when the block ends without an error. Needs
    no keys: nothing an operator command touches is encrypted."""
    engine = create_engine(settings)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            yield session
    finally:
        await engine.dispose()
