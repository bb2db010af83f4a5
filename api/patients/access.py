"""The gate in front of every therapist read: read token, live grant, patient, scope, audit.

Order of checks: a token that does not verify is 401 and anonymous (nothing to attribute);
from there every outcome is audited. A revoked or expired grant is 401; a patient other than the
token's is 404, like any id that does not exist; a scope the token lacks is 403 with
``insufficient_scope`` (RFC 6750).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit.repository import append
from api.auth.dependencies import TokensDep
from api.auth.tokens import InvalidToken
from api.database import SessionDep
from api.errors import Forbidden, NotFound, ProblemError, Unauthorized
from api.grants.repository import grant_exists, live_grant
from api.journal.repository import Scope
from api.models import AuditOutcome, AuditRecord, ReadScope
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
    scope: Scope = field(init=False)

    def __post_init__(self) -> None:
        self.scope = Scope.shared(self.patient_id)

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


def require(needed: ReadScope, resource: str, action: str) -> Callable[..., Awaitable[ReadAccess]]:
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
        access = ReadAccess(
            request=request,
            session=session,
            therapist_id=claims.therapist_id,
            patient_id=patient_id,
            grant_id=claims.grant_id,
            resource=resource,
            action=action,
        )
        # Re-checked on every request: a revoked or expired grant stops its tokens at once.
        if (
            await live_grant(
                session, claims.grant_id, claims.therapist_id, claims.patient_id, utcnow()
            )
            is None
        ):
            refused = Unauthorized("The grant behind this token was revoked or has expired.")
            if not await grant_exists(session, claims.grant_id):
                # The grant is gone with an erased account: nothing to attribute, and a record
                # would bring the erased patient's id back.
                raise refused
            raise await access.refuse(AuditOutcome.NO_GRANT, refused)
        if patient_id != claims.patient_id:
            raise await access.refuse(AuditOutcome.NOT_FOUND, NotFound(NO_PATIENT))
        if needed.value not in claims.scopes:
            challenge = f'Bearer error="insufficient_scope", scope="{needed.value}"'
            raise await access.refuse(
                AuditOutcome.INSUFFICIENT_SCOPE,
                Forbidden(
                    f"This token does not carry `{needed.value}`.",
                    headers={"WWW-Authenticate": challenge},
                ),
            )
        return access

    return check
