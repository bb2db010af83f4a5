from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from api.accounts.schemas import Email
from api.models import GrantState, ReadScope
from api.pairing.codes import PairingCodeText


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


GRANT_EXAMPLE: JsonDict = {
    "id": "04100423-b6a0-410e-9b72-b7394471b0cb",
    "state": "active",
    "scopes": ["checkins:read", "summary:read"],
    "patient": {"id": "6b8ad972-9329-4a1d-b265-4288ababcca0", "display_name": "Ada"},
    "therapist": {
        "id": "bfec041f-0409-4789-8fa1-d993734fb716",
        "display_name": "Dr. Lee",
        "email": "dr.lee@example.org",
        "verified": True,
        "clinic": "Harbor Integration Clinic",
    },
    "created_at": "2026-11-21T09:12:44.913Z",
    "expires_at": "2027-02-19T09:12:44.913Z",
    "revoked_at": None,
    "revoked_by": None,
}


class GrantCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "pairing_code": "K7QP-4XM9-2RTD",
                    "scopes": ["checkins:read", "summary:read"],
                    "expires_at": "2027-02-19T00:00:00Z",
                },
                {
                    "therapist_email": "dr.lee@example.org",
                    "scopes": ["checkins:read", "summary:read"],
                    "expires_at": "2027-02-19T00:00:00Z",
                },
            ]
        },
    )

    pairing_code: PairingCodeText | None = Field(
        default=None,
        description="The code your therapist gave you (see `GET /v1/pairing-codes/{code}`). "
        "Send this or `therapist_email`.",
    )
    therapist_email: Email | None = Field(
        default=None, description="A verified therapist's account email, instead of a code."
    )
    scopes: Scopes
    expires_at: AwareDatetime | None = Field(
        default=None, description="When consent ends: default 90 days from now, at most 365 days."
    )

    @model_validator(mode="after")
    def _one_therapist(self) -> GrantCreate:
        if (self.pairing_code is None) == (self.therapist_email is None):
            raise ValueError("send exactly one of pairing_code and therapist_email")
        return self


class Party(BaseModel):
    id: uuid.UUID
    display_name: str


class TherapistParty(Party):
    email: str
    verified: bool = Field(
        description="Invited or verified by the operator. A grant made before verification "
        "existed may name an unverified therapist."
    )
    clinic: str | None


class GrantRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [GRANT_EXAMPLE]})

    id: uuid.UUID
    state: GrantState = Field(description="`active`, `expired` or `revoked`.")
    scopes: list[ReadScope]
    patient: Party
    therapist: TherapistParty
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: Literal["patient", "therapist", "operator"] | None = Field(
        description="`patient` (revoked), `therapist` (given up) or `operator` (the therapist's "
        "account was deactivated)."
    )


class GrantPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [GRANT_EXAMPLE], "next_cursor": None}]}
    )

    items: list[GrantRead]
    next_cursor: str | None


class ReadTokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImlpU2Z2M2tJZjQwVmU5dmR2ckNZNkUtYWZDVDVVNVp3OEtLTmRDS0tVWUUiLCJ0eXAiOiJhdCtqd3QifQ.eyJ0eXAiOiJwYXRpZW50X3JlYWQiLCJzY29wZSI6ImNoZWNraW5zOnJlYWQgc3VtbWFyeTpyZWFkIn0.M6Ml6RQCUGIuNa8AN9rAgmKPwOL9-Vd9atOqBb9b1czEyOUV8VuJiqGscxwFlGW5sTdpwR9mboECgmMCWeSpBQ",
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "scope": "checkins:read summary:read",
                    "patient_id": "6b8ad972-9329-4a1d-b265-4288ababcca0",
                    "grant_id": "04100423-b6a0-410e-9b72-b7394471b0cb",
                }
            ]
        }
    )

    access_token: str = Field(
        description="A patient-scoped read token (JWT), valid on /v1/patients/{patient_id}/... only."
    )
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int = Field(description="Seconds: at most 900, and never past the grant's expiry.")
    scope: str = Field(description="The scopes granted to this token, space-separated.")
    patient_id: uuid.UUID
    grant_id: uuid.UUID
