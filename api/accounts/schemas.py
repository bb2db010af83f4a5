from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from api.models import Role
from api.text import DisplayName, StorableStr
from api.time_zones import TimeZoneName


def normalize_email(value: str) -> str:
    """One account per mailbox: trimmed, internationalised domains normalised, then lower-cased."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


Email = Annotated[
    str, Field(max_length=254, examples=["ada@example.org"]), AfterValidator(normalize_email)
]
Password = Annotated[
    StorableStr, Field(min_length=10, max_length=128, examples=["correct horse battery"])
]


ACCOUNT_EXAMPLE: JsonDict = {
    "id": "6b8ad972-9329-4a1d-b265-4288ababcca0",
    "email": "ada@example.org",
    "display_name": "Ada",
    "role": "patient",
    "time_zone": "Europe/Berlin",
    "verified": False,
    "clinic": None,
    "created_at": "2026-11-01T17:22:09.482Z",
    "updated_at": "2026-11-01T17:22:09.482Z",
}


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # What the service enforces, said in the schema: a therapist needs a code (the
            # validator below asks a patient for a name).
            "if": {"properties": {"role": {"const": "therapist"}}, "required": ["role"]},
            "then": {"required": ["invitation_code"]},
            "examples": [
                {
                    "email": "ada@example.org",
                    "password": "correct horse battery",
                    "display_name": "Ada",
                    "role": "patient",
                },
                {
                    "email": "dr.lee@example.org",
                    "password": "correct horse battery",
                    "role": "therapist",
                    "invitation_code": "inv_Vq3kX0m4d9hZ2cF7yT1bWn8rL5sJ6pQeA0uGxYzH4oM",
                },
            ],
        },
    )

    email: Email
    password: Password
    display_name: DisplayName | None = Field(
        default=None,
        examples=["Ada"],
        description="Required for a patient; a therapist's defaults to the invitation's.",
    )
    role: Role = Field(
        description="`patient` writes a journal; `therapist` reads what patients share."
    )
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA time zone: a patient's days (summaries, a therapist's view) are "
        "counted in it. Default UTC.",
    )
    invitation_code: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Therapists only, and required for them: the code from the operator's "
        "invitation, for this email. Without a valid one the answer is 403 and nothing is created.",
    )

    @model_validator(mode="after")
    def _patients_name_themselves(self) -> AccountCreate:
        if self.role is Role.PATIENT:
            if self.invitation_code is not None:
                raise ValueError("invitation_code is for therapists only")
            if self.display_name is None:
                raise ValueError("display_name is required")
        return self

    # A therapist without invitation_code is let through to the service, which answers 403:
    # the one answer for a missing, wrong, used, expired or revoked code.


class AccountUpdate(BaseModel):
    """Fields left out stay as they are. A new password needs the current one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"display_name": "Ada L."},
                {
                    "password": "a new long passphrase",
                    "current_password": "correct horse battery",
                },
            ]
        },
    )

    display_name: DisplayName | None = None
    time_zone: TimeZoneName | None = Field(default=None, description="IANA time zone.")
    password: Password | None = Field(
        default=None, description="The new password (10-128 characters)."
    )
    current_password: Annotated[str, Field(max_length=128)] | None = None

    @model_validator(mode="after")
    def _password_change_needs_current(self) -> AccountUpdate:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to set a new password")
        return self


class AccountRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [ACCOUNT_EXAMPLE]}
    )

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    time_zone: str = Field(description="IANA time zone the patient's days are counted in.")
    verified: bool = Field(
        description="A therapist the operator invited or verified; always false for a patient."
    )
    clinic: str | None = Field(description="A therapist's clinic, as the operator entered it.")
    created_at: datetime
    updated_at: datetime


class AccountErase(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "correct horse battery"}]}
    )

    password: Annotated[str, Field(max_length=128, description="Your password, entered again.")]
