"""Pairing: a verified therapist makes a short code, a patient previews it and grants with it.

A code lives 10 minutes and works once. Every way a code can fail to work (never made, mistyped,
used, expired, its therapist since deactivated) answers the same 404, and every lookup spends
from the per-patient and per-address limits (``RateLimiter.check_pairing_lookup``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.dependencies import Caller
from api.errors import Forbidden, NotFound
from api.models import Account, PairingCode
from api.models.base import utcnow
from api.pairing.codes import hash_code, new_code, normalize
from api.pairing.schemas import PairedTherapist, PairingCodeRead, PairingPreview

LIFETIME = timedelta(minutes=10)
NO_CODE = (
    "No pairing code like this is waiting: check it with your therapist, or ask for a new one."
)


async def create_code(session: AsyncSession, caller: Caller) -> PairingCodeRead:
    account = await caller.account(session)
    if not account.verified or account.deactivated_at is not None:
        raise Forbidden("Only a verified therapist can pair with patients: ask the operator.")
    now = utcnow()
    # Clear away this therapist's codes that can no longer be used, so they do not pile up.
    await session.execute(
        delete(PairingCode).where(
            PairingCode.therapist_id == account.id,
            or_(PairingCode.used_at.is_not(None), PairingCode.expires_at <= now),
        )
    )
    code = new_code()
    pairing = PairingCode(
        therapist_id=account.id,
        code_hash=hash_code(normalize(code) or ""),
        created_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(pairing)
    await session.flush()
    return PairingCodeRead(code=code, expires_at=pairing.expires_at)


@dataclass(frozen=True)
class Found:
    pairing: PairingCode
    therapist: Account


async def find(session: AsyncSession, text: str) -> Found:
    """The waiting code ``text`` names, with its (verified, active) therapist; else the 404."""
    code = normalize(text)
    if code is None:
        raise NotFound(NO_CODE)
    row = (
        await session.execute(
            select(PairingCode, Account)
            .join(Account, Account.id == PairingCode.therapist_id)
            .where(
                PairingCode.code_hash == hash_code(code),
                PairingCode.used_at.is_(None),
                PairingCode.expires_at > utcnow(),
                Account.verified.is_(True),
                Account.deactivated_at.is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(NO_CODE)
    return Found(pairing=row[0], therapist=row[1])


async def preview(session: AsyncSession, text: str) -> PairingPreview:
    found = await find(session, text)
    return PairingPreview(
        therapist=PairedTherapist(
            display_name=found.therapist.display_name,
            clinic=found.therapist.clinic,
            verified=found.therapist.verified,
        ),
        expires_at=found.pairing.expires_at,
    )


async def use(session: AsyncSession, text: str) -> Account:
    """Use the code up for a grant; the therapist it pairs with. One conditional UPDATE: of two
    patients racing with one code, one wins and the other gets the 404."""
    found = await find(session, text)
    claimed = await session.scalar(
        update(PairingCode)
        .where(PairingCode.id == found.pairing.id, PairingCode.used_at.is_(None))
        .values(used_at=utcnow())
        .returning(PairingCode.id)
    )
    if claimed is None:
        raise NotFound(NO_CODE)
    return found.therapist
