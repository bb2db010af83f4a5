from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, String, false
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, TimestampMixin


class Role(StrEnum):
    PATIENT = "patient"
    THERAPIST = "therapist"


class Account(IdMixin, TimestampMixin, Base):
    __tablename__ = "accounts"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            native_enum=False,
            length=16,
            name="role",
            create_constraint=True,
            values_callable=lambda roles: [r.value for r in roles],
        )
    )
    # IANA name; the patient's days (summaries, the therapist's page) are counted in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Therapists only: true once the operator invited (or later verified) them. Only a verified
    # therapist can receive a new grant or make a pairing code; patients stay false.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    clinic: Mapped[str | None] = mapped_column(String(100), default=None)
    # Set by the operator (`journal therapists deactivate`): no sign-in from then on.
    deactivated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped on every change; the ETag is derived from it and If-Match compares against it.
    version: Mapped[int] = mapped_column(default=1)
