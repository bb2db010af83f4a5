"""The gate in front of every therapist read: live grant, patient, scope, audit.

Two doors lead to it: the API's read tokens (``require``, a route dependency) and the therapist
web view (``api.web``), which holds a signed-in therapist and the grant a patient gave them.
Both hand a ``Reader`` to ``open_read``, the one place that decides, so a read through either
door is checked, scoped (``Scope.shared``: never private entries) and audited the same way.

Order of checks: a token that does not verify is 401 and anonymous (nothing to attribute);
from there every outcome is audited. A revoked or expired grant is 401; a patient other than the
grant's is 404, like any id that does not exist; a scope the reader lacks is 403 with
``insufficient_scope`` (RFC 6750).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit.repository import append
from api.auth.dependencies import TokensDep
from api.auth.tokens import InvalidToken
from api.database import SessionDep
from api.errors import Forbidden, NotFound, ProblemError, Unauthorized
from api.grants.repository import grant_exists, grant_is_live
from api.journal.repository import Scope
from api.models import Account, AuditOutcome, AuditRecord, Grant, ReadScope
from api.models.base import utcnow

read_bearer = HTTPBearer(
    scheme_name="patient_read",
    description="A patient-scoped read token from `POST /v1/grants/{grant_id}/token`. "
    "Scopes: " + ", ".join(f"`{s.value}`" for s in ReadScope) + ".",
    auto_error=False,
)
NO_PATIENT = "No patient with this id has shared this with you."


@dataclass
class ReadAccess:
    """A checked therapist request: what it may read, and the duty to say what it read."""

    request: Request
    session: AsyncSession
    therapist_id: uuid.UUID
    patient_id: uuid.UUID
    grant_id: uuid.UUID | None
    resource: str
    action: str
    # What the grant lets this reader see: "sessions:read" lets it read "sessions".
    scopes: frozenset[str]
    scope: Scope = field(init=False)

    def __post_init__(self) -> None:
        kinds = frozenset(granted.partition(":")[0] for granted in self.scopes)
        self.scope = Scope.shared(self.patient_id, kinds)

    def _record(self, outcome: AuditOutcome, ids: list[uuid.UUID], count: int) -> AuditRecord:
        return AuditRecord(
            at=utcnow(),
            request_id=self.request.state.request_id,
            therapist_id=self.therapist_id,
            patient_id=self.patient_id,
            grant_id=self.grant_id,
            resource=self.resource,
            action=self.action,
            entry_ids=[str(i) for i in ids],
            count=count,
            outcome=outcome.value,
        )

    async def allowed(self, ids: list[uuid.UUID], count: int | None = None) -> None:
        """Recorded in the request's own transaction: no read is answered without its record."""
        await append(
            self.session,
            self._record(AuditOutcome.ALLOWED, ids, len(ids) if count is None else count),
        )

    async def refuse(self, outcome: AuditOutcome, problem: ProblemError) -> ProblemError:
        """Record the refusal and commit it now: the problem raised next rolls the request back.

        Committing here is safe because therapist requests write nothing but their audit record.
        (A second transaction would deadlock SQLite's single writer against this one.)
        """
        await append(self.session, self._record(outcome, [], 0))
        await self.session.commit()
        return problem


@dataclass(frozen=True)
class Reader:
    """Who asks to read, through which grant, with which scopes: a read token's claims, or a
    signed-in therapist and the grant the web view found for them."""

    therapist_id: uuid.UUID
    grant_id: uuid.UUID
    patient_id: uuid.UUID  # the grant's patient
    scopes: frozenset[str]


async def open_read(
    request: Request,
    session: AsyncSession,
    reader: Reader,
    patient_id: uuid.UUID,
    needed: ReadScope,
    resource: str,
    action: str,
) -> ReadAccess:
    """Check one read of ``resource`` about ``patient_id``; raise the refusal (recorded), or
    return the access to read with (the caller records what it read through it)."""
    access = await open_grant(request, session, reader, patient_id, resource, action)
    if needed.value not in reader.scopes:
        challenge = f'Bearer error="insufficient_scope", scope="{needed.value}"'
        raise await access.refuse(
            AuditOutcome.INSUFFICIENT_SCOPE,
            Forbidden(
                f"This token does not carry `{needed.value}`.",
                headers={"WWW-Authenticate": challenge},
            ),
        )
    return access


async def open_grant(
    request: Request,
    session: AsyncSession,
    reader: Reader,
    patient_id: uuid.UUID,
    resource: str,
    action: str,
) -> ReadAccess:
    """The checks before any scope: the grant still stands, and it is this patient's. Raise the
    refusal (recorded), or return the access; ``open_read`` then checks the scope. Whatever is
    shown about a patient (even only a name) comes after this has passed."""
    access = ReadAccess(
        request=request,
        session=session,
        therapist_id=reader.therapist_id,
        patient_id=patient_id,
        grant_id=reader.grant_id,
        resource=resource,
        action=action,
        scopes=reader.scopes,
    )
    # Re-checked on every request: a revoked or expired grant stops its readers at once.
    if not await grant_is_live(
        session, reader.grant_id, reader.therapist_id, reader.patient_id, utcnow()
    ):
        refused = Unauthorized("The grant behind this token was revoked or has expired.")
        if not await grant_exists(session, reader.grant_id):
            # The grant is gone with an erased account: nothing to attribute, and a record
            # would bring the erased patient's id back.
            raise refused
        raise await access.refuse(AuditOutcome.NO_GRANT, refused)
    if patient_id != reader.patient_id:
        raise await access.refuse(AuditOutcome.NOT_FOUND, NotFound(NO_PATIENT))
    return access


def require(needed: ReadScope, resource: str, action: str) -> Callable[..., Awaitable[ReadAccess]]:
    """The API's door: a patient-scoped read token in ``Authorization``."""

    async def check(
        request: Request,
        patient_id: uuid.UUID,
        session: SessionDep,
        tokens: TokensDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(read_bearer)],
    ) -> ReadAccess:
        if credentials is None:
            raise Unauthorized(
                "Send a patient-scoped read token as `Authorization: Bearer <token>`.", error=None
            )
        try:
            claims = tokens.verify_read(credentials.credentials)
        except InvalidToken:
            raise Unauthorized("The read token is invalid or has expired.") from None
        reader = Reader(
            therapist_id=claims.therapist_id,
            grant_id=claims.grant_id,
            patient_id=claims.patient_id,
            scopes=claims.scopes,
        )
        return await open_read(request, session, reader, patient_id, needed, resource, action)

    return check


@dataclass(frozen=True)
class GrantSeen:
    """The grant the web view reads a patient through, with the patient's name."""

    grant: Grant
    patient_name: str

    def reader(self) -> Reader:
        return Reader(
            therapist_id=self.grant.therapist_id,
            grant_id=self.grant.id,
            patient_id=self.grant.patient_id,
            scopes=frozenset(self.grant.scopes),
        )


async def grant_from(
    session: AsyncSession, therapist_id: uuid.UUID, patient_id: uuid.UUID
) -> GrantSeen | None:
    """The web view's stand-in for a read token: the newest live grant from this patient to this
    therapist, or else the newest ended one (so that ``open_read`` refuses, and records it).
    None when the patient never shared anything with the therapist."""
    now = utcnow()
    live = and_(Grant.revoked_at.is_(None), Grant.expires_at > now)
    statement = (
        select(Grant, Account.display_name)
        .join(Account, Account.id == Grant.patient_id)
        .where(Grant.therapist_id == therapist_id, Grant.patient_id == patient_id)
        .order_by(case((live, 0), else_=1), Grant.created_at.desc(), Grant.id.desc())
        .limit(1)
    )
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else GrantSeen(grant=row[0], patient_name=row[1])
