from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, utcnow


class Login(IdMixin, Base):
    """One sign-in: the family of refresh tokens it rotates through, and the access tokens it mints.

    Revoking the login (logout, reuse of a rotated refresh token) ends every token of the family
    at once, access tokens included: each request checks its login.
    """

    __tablename__ = "logins"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class RefreshToken(IdMixin, Base):
    __tablename__ = "refresh_tokens"

    login_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("logins.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the opaque token: the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Set when this token was exchanged for the next one; presenting it again is reuse.
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
