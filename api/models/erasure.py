from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, utcnow


class Erasure(IdMixin, Base):
    """That an account was erased, and when: deliberately nothing that points back to whom."""

    __tablename__ = "erasures"

    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    role: Mapped[str] = mapped_column(String(16))
