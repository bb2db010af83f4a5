"""The gate in front of every therapist read: live grant, patient, scope, audit.

Two doors lead to it: the API's read tokens (``require``, a route dependency) and the therapist
web view (``api.web``), which holds a signed-in therapist and the grant a patient gave them.
Both hand a ``Reader`` to ``open_read``, the one place that decides, so a read through either
door is checked, scoped (``Scope.shared``: never private entries) and audited the same way.

Order of checks: a token that does not verify, or was revoked, or whose login ended, is 401 and
anonymous (nothing to attribute); a request about a patient who never shared with the therapist
is 404 and kept for the operator (``StrayRequest``), not in that patient's log; from there every
outcome is audited. A revoked or expired grant is 401; a patient other than the
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
from api.auth.tokens import InvalidToken, TokenCodec
from api.database import SessionDep
from api.errors import Forbidden, NotFound, ProblemError, Unauthorized
from api.grants.repository import grant_exists, grant_is_live, reader_is_live
from api.journal.repository import Scope
from api.models import AuditOutcome, AuditRecord, Grant, ReadScope, StrayRequest
from api.models.base import utcnow

read_bearer = HTTPBearer(
    scheme_name="patient_read",
    description="A patient-scoped read token from `POST /v1/grants/{grant_id}/token`: a JWT "
    "checked as RFC8725 recommends, like the login token. "
    "Scopes: " + ", ".join(f"`{s.value}`" for s in ReadScope) + ".",
    auto_error=False,
)
NO_PATIENT = "No patient with this id has shared this with you."
READ_ENDED = "The read token was revoked, or the login it was minted under has ended."


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
    # The therapist's login the read rides on: ending it (logout, password change elsewhere,
    # deactivation) ends the read at once.
    login_id: uuid.UUID
    # A read token's id, so that revoking the token alone ends it; None for the web view.
    jti: str | None = None


async def open_read(
    request: Request,
    session: AsyncSession,
    reader: Reader,
    patient_id: uuid.UUID,
    needed: ReadScope | tuple[ReadScope, ...],
    resource: str,
    action: str,
) -> ReadAccess:
    """Check one read of ``resource`` about ``patient_id``; raise the refusal (recorded), or
    return the access to read with (the caller records what it read through it). ``needed``
    may name several scopes, any one of which will do (safety flags: assessments or summary)."""
    access = await open_grant(request, session, reader, patient_id, resource, action)
    any_of = needed if isinstance(needed, tuple) else (needed,)
    if not any(scope.value in reader.scopes for scope in any_of):
        names = " ".join(scope.value for scope in any_of)
        challenge = f'Bearer error="insufficient_scope", scope="{names}"'
        wanted = " or ".join(f"`{scope.value}`" for scope in any_of)
        raise await access.refuse(
            AuditOutcome.INSUFFICIENT_SCOPE,
            Forbidden(
                f"This token does not carry {wanted}.",
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
    stray = False
    if patient_id != reader.patient_id:
        # Another patient than the grant's (a rare path: the extra queries are paid only here).
        if not await reader_is_live(session, reader.therapist_id, reader.login_id, reader.jti):
            raise Unauthorized(READ_ENDED)
        # Never shared with this therapist: not that patient's business, and perhaps no patient
        # at all. The refusal is kept for the operator instead of in that patient's log.
        stray = not await ever_shared(session, reader.therapist_id, patient_id)
    # Re-checked on every request: a revoked or expired grant stops its readers at once, and
    # so does the end of the login the read rides on.
    if not await grant_is_live(
        session,
        reader.grant_id,
        reader.therapist_id,
        reader.patient_id,
        reader.login_id,
        reader.jti,
        utcnow(),
    ):
        refused = Unauthorized("The grant behind this token was revoked or has expired.")
        if not await grant_exists(session, reader.grant_id):
            # The grant is gone with an erased account: nothing to attribute, and a record
            # would bring the erased patient's id back.
            raise refused
        if not await reader_is_live(session, reader.therapist_id, reader.login_id, reader.jti):
            # The token itself is over (logout, deactivation, revoked alone): like an expired
            # token, a refusal for the bearer, with nothing to tell the patient.
            raise Unauthorized(READ_ENDED)
        if stray:
            raise await record_stray(access, refused)
        raise await access.refuse(AuditOutcome.NO_GRANT, refused)
    if patient_id != reader.patient_id:
        if stray:
            raise await record_stray(access, NotFound(NO_PATIENT))
        raise await access.refuse(AuditOutcome.NOT_FOUND, NotFound(NO_PATIENT))
    return access


async def ever_shared(
    session: AsyncSession, therapist_id: uuid.UUID, patient_id: uuid.UUID
) -> bool:
    """Whether the patient ever gave this therapist a grant, live or ended."""
    found = await session.scalar(
        select(Grant.id)
        .where(Grant.therapist_id == therapist_id, Grant.patient_id == patient_id)
        .limit(1)
    )
    return found is not None


async def record_stray(access: ReadAccess, problem: ProblemError) -> ProblemError:
    """Record, for the operator, a request about a patient who never shared with this therapist,
    and commit it (as ``ReadAccess.refuse`` does); return the problem to raise."""
    access.session.add(
        StrayRequest(
            at=utcnow(),
            request_id=access.request.state.request_id,
            therapist_id=access.therapist_id,
            grant_id=access.grant_id,
            resource=access.resource,
            action=access.action,
        )
    )
    await access.session.commit()
    return problem


def token_reader(tokens: TokenCodec, credentials: HTTPAuthorizationCredentials | None) -> Reader:
    """The reader a read token names, or the 401 for a missing or bad one."""
    if credentials is None:
        raise Unauthorized(
            "Send a patient-scoped read token as `Authorization: Bearer <token>`.", error=None
        )
    try:
        claims = tokens.verify_read(credentials.credentials)
    except InvalidToken:
        raise Unauthorized("The read token is invalid or has expired.") from None
    return Reader(
        therapist_id=claims.therapist_id,
        grant_id=claims.grant_id,
        patient_id=claims.patient_id,
        scopes=claims.scopes,
        login_id=claims.login_id,
        jti=claims.jti,
    )


def require(
    needed: ReadScope | tuple[ReadScope, ...], resource: str, action: str
) -> Callable[..., Awaitable[ReadAccess]]:  # pragma: no mutate block
    """The API's door: a patient-scoped read token in ``Authorization``.

    The dependency built here, once per route at import, only passes its route's scope, resource
    and action on: what decides is in module-level functions (``token_reader``, ``open_read``)
    looked up at each request. That is also what lets ``make mutants`` reach them: a mutant of
    this closure would be built at import, before the mutant is chosen, and never be active.
    """

    async def check(
        request: Request,
        patient_id: uuid.UUID,
        session: SessionDep,
        tokens: TokensDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(read_bearer)],
    ) -> ReadAccess:
        reader = token_reader(tokens, credentials)
        return await open_read(request, session, reader, patient_id, needed, resource, action)

    return check


@dataclass(frozen=True)
class GrantSeen:
    """The grant the web view reads a patient through, with the patient's name."""

    grant: Grant
    patient_name: str
    login_id: uuid.UUID  # the web session's login

    def reader(self) -> Reader:
        return Reader(
            therapist_id=self.grant.therapist_id,
            grant_id=self.grant.id,
            patient_id=self.grant.patient_id,
            scopes=frozenset(self.grant.scopes),
            login_id=self.login_id,
        )


async def grant_from(
    session: AsyncSession, therapist_id: uuid.UUID, login_id: uuid.UUID, patient_id: uuid.UUID
) -> GrantSeen | None:
    """The web view's stand-in for a read token: the newest live grant from this patient to this
    therapist, or else the newest ended one (so that ``open_read`` refuses, and records it).
    None when the patient never shared anything with the therapist."""
    now = utcnow()
    live = and_(Grant.revoked_at.is_(None), Grant.expires_at > now)
    statement = (
        select(Grant)
        .where(Grant.therapist_id == therapist_id, Grant.patient_id == patient_id)
        .order_by(case((live, 0), else_=1), Grant.created_at.desc(), Grant.id.desc())
        .limit(1)
    )
    grant = await session.scalar(statement)
    if grant is None:
        return None
    # The name as the grant keeps it: the patient's current one while it is live, the one it
    # ended with after.
    return GrantSeen(grant=grant, patient_name=grant.patient_name, login_id=login_id)
