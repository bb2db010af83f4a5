"""How a therapist comes to exist and to be paired: operator invitations, pairing codes, and
what is kept about a therapist's reads that belong to no patient."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, utcnow


class TherapistInvitation(IdMixin, Base):
    """An operator's invitation: the one way a therapist account comes to exist.

    Only the SHA-256 of the code is kept (the code has 256 bits, nothing to brute-force).
    """

    __tablename__ = "therapist_invitations"
    __table_args__ = (Index("ix_therapist_invitations_email", "email"),)

    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(100))
    clinic: Mapped[str | None] = mapped_column(String(100), default=None)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class PairingCode(IdMixin, Base):
    """A short code a therapist hands a patient, who grants access with it: 10 minutes, one use."""

    __tablename__ = "pairing_codes"

    therapist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the normalised code. Guessing is stopped by the rate limits and the 10 minutes.
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class RevokedReadToken(Base):
    """A read token revoked by itself (RFC 7009) before it expired; kept until it would have."""

    __tablename__ = "revoked_read_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]


class StrayRequest(IdMixin, Base):
    """A therapist asked about a patient who never shared anything with them. Kept for the
    operator, on the therapist's side: it goes in no patient's access log, and names no patient
    (the id asked for may be anyone's, or an erased patient's)."""

    __tablename__ = "stray_requests"
    __table_args__ = (Index("ix_stray_requests_therapist_at", "therapist_id", "at"),)

    at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    therapist_id: Mapped[uuid.UUID]
    grant_id: Mapped[uuid.UUID | None]
    resource: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
