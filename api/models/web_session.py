"""A therapist's signed-in browser: the server side of the web view's session cookie."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, utcnow


class WebSession(IdMixin, Base):
    """One browser sign-in to the therapist pages, riding on a ``Login`` of its own.

    The login is what logout, a password change and account erasure already end, so each of
    them ends the web session too (revoked, or gone by cascade). The cookie holds an opaque
    token; only its SHA-256 is stored here.
    """

    __tablename__ = "web_sessions"

    login_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("logins.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # Put in every form of the session's pages and compared on each POST: a page of another
    # site cannot read it, so it cannot forge a form that carries it.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Moved forward by every request; a session idle for longer than the idle timeout is over.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
