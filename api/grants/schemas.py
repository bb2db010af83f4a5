from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from api.accounts.schemas import Email
from api.models import GrantState, ReadScope


def _distinct(scopes: list[ReadScope]) -> list[ReadScope]:
    if len(set(scopes)) != len(scopes):
        raise ValueError("must not name a scope twice")
    return scopes


Scopes = Annotated[
    list[ReadScope],
    Field(
        min_length=1,
        max_length=len(ReadScope),
        description="What the therapist may read: a non-empty set.",
    ),
    AfterValidator(_distinct),
]


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    therapist_email: Email = Field(
        description="The therapist's account email (must be a therapist account)."
    )
    scopes: Scopes
    expires_at: AwareDatetime | None = Field(
        default=None, description="When consent ends: default 90 days from now, at most 365 days."
    )


class Party(BaseModel):
    id: uuid.UUID
    display_name: str


class TherapistParty(Party):
    email: str


class GrantRead(BaseModel):
    id: uuid.UUID
    state: GrantState = Field(description="`active`, `expired` or `revoked`.")
    scopes: list[ReadScope]
    patient: Party
    therapist: TherapistParty
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None = Field(description="`patient` (revoked) or `therapist` (given up).")


class GrantPage(BaseModel):
    items: list[GrantRead]
    next_cursor: str | None


class ReadTokenResponse(BaseModel):
    access_token: str = Field(
        description="A patient-scoped read token (JWT), valid on /v1/patients/{patient_id}/... only."
    )
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int = Field(description="Seconds: at most 900, and never past the grant's expiry.")
    scope: str = Field(description="The scopes granted to this token, space-separated.")
    patient_id: uuid.UUID
    grant_id: uuid.UUID
