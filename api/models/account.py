from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum, String
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
    # Bumped on every change; the ETag is derived from it and If-Match compares against it.
    version: Mapped[int] = mapped_column(default=1)
