from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api import paging
from api.accounts.repository import AccountRepository
from api.auth.dependencies import Caller
from api.auth.tokens import TokenCodec
from api.errors import BadRequest, Forbidden, NotFound, UnprocessableContent
from api.grants.repository import GrantRepository, GrantRow
from api.grants.schemas import GrantCreate, GrantRead, Party, ReadTokenResponse, TherapistParty
from api.journal.cursors import encode_cursor
from api.models import Account, Grant, GrantState, ReadScope, Role
from api.models.base import utcnow
from api.pairing import service as pairing

DEFAULT_LIFETIME = timedelta(days=90)
NO_THERAPIST = (
    "therapist_email is not the email of a verified therapist: ask your therapist for a pairing "
    "code instead."
)
LONGEST_LIFETIME = timedelta(days=365)


def present(row: GrantRow) -> GrantRead:
    grant = row.grant
    return GrantRead(
        id=grant.id,
        state=grant.state(utcnow()),
        scopes=grant.scopes,
        patient=Party(id=grant.patient_id, display_name=row.patient_name),
        therapist=TherapistParty(
            id=grant.therapist_id,
            display_name=row.therapist_name,
            email=row.therapist_email,
            verified=row.therapist_verified,
            clinic=row.therapist_clinic,
        ),
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
    )


async def create_grant(session: AsyncSession, caller: Caller, data: GrantCreate) -> GrantRead:
    now = utcnow()
    expires_at = data.expires_at or now + DEFAULT_LIFETIME
    if not now < expires_at <= now + LONGEST_LIFETIME:
        raise UnprocessableContent(
            "expires_at must be in the future and at most 365 days away.",
            loc=("body", "expires_at"),
        )
    if data.pairing_code is not None:
        therapist = await pairing.use(session, data.pairing_code)
    else:
        assert data.therapist_email is not None  # the schema asks for one of the two
        found = await AccountRepository(session).by_email(data.therapist_email)
        # Unknown, a patient, unverified or deactivated: one answer, so that it tells nothing
        # about who has an account here.
        if found is None or not can_receive_grants(found):
            raise UnprocessableContent(NO_THERAPIST, loc=("body", "therapist_email"))
        therapist = found
    patient = await caller.account(session)
    grant = Grant(
        patient_id=caller.id,
        therapist_id=therapist.id,
        scopes=sorted({scope.value for scope in data.scopes}),
        created_at=now,
        expires_at=expires_at,
        patient_name=patient.display_name,
    )
    session.add(grant)
    await session.flush()
    return present(
        GrantRow(
            grant,
            patient.display_name,
            therapist.display_name,
            therapist.email,
            therapist.verified,
            therapist.clinic,
        )
    )


def can_receive_grants(account: Account) -> bool:
    return account.role is Role.THERAPIST and account.verified and account.deactivated_at is None


async def get_grant(session: AsyncSession, caller: Caller, grant_id: uuid.UUID) -> GrantRead:
    row = await GrantRepository(session, caller.id, caller.role).get(grant_id)
    if row is None:
        raise NotFound("No grant with this id.")
    return present(row)


async def list_grants(
    session: AsyncSession, caller: Caller, limit: int, cursor: str | None
) -> tuple[list[GrantRead], str | None]:
    start = paging.after(cursor)
    rows, more = await GrantRepository(session, caller.id, caller.role).page(limit, start)
    grants = [present(row) for row in rows]
    last = rows[-1].grant if rows else None
    return grants, encode_cursor(last.created_at, last.id) if more and last else None


async def end_grant(session: AsyncSession, caller: Caller, grant_id: uuid.UUID) -> None:
    """The patient revokes, or the therapist gives the grant up; either way it ends now."""
    row = await GrantRepository(session, caller.id, caller.role).get(grant_id)
    if row is None:
        raise NotFound("No grant with this id.")
    grant = row.grant
    if grant.revoked_at is None:
        grant.revoked_at = utcnow()
        grant.revoked_by = caller.role.value
        await session.flush()


async def mint_read_token(
    session: AsyncSession,
    tokens: TokenCodec,
    caller: Caller,
    grant_id: uuid.UUID,
    scope: str | None,
) -> ReadTokenResponse:
    row = await GrantRepository(session, caller.id, caller.role).get(grant_id)
    if row is None:
        raise NotFound("No grant with this id.")
    grant = row.grant
    now = utcnow()
    if grant.state(now) is not GrantState.ACTIVE:
        raise Forbidden(f"This grant is {grant.state(now).value}: it can no longer be used.")
    asked = scope.split() if scope else list(grant.scopes)
    unknown = [s for s in asked if s not in {r.value for r in ReadScope}]
    if unknown or not asked:
        raise BadRequest(
            "`scope` must be space-separated scopes such as `checkins:read summary:read`."
        )
    beyond = sorted(set(asked) - set(grant.scopes))
    if beyond:
        raise Forbidden(f"The grant does not include: {' '.join(beyond)}.")
    scopes = sorted(set(asked))
    token = tokens.issue_read(
        caller.id, caller.login_id, grant.patient_id, grant.id, scopes, now, grant.expires_at
    )
    lifetime = min(tokens.ttl, grant.expires_at - now)
    return ReadTokenResponse(
        access_token=token,
        expires_in=int(lifetime.total_seconds()),
        scope=" ".join(scopes),
        patient_id=grant.patient_id,
        grant_id=grant.id,
    )
