"""Safety flags: a PHQ-9 answered with item 9 above 0, kept as a record of its own.

A flag is raised when the server receives such a questionnaire, whatever the date it says it was
completed, and stays open until a therapist acknowledges it: it never expires, and a later
questionnaire does not close it. It goes with its questionnaire (deleting the questionnaire
deletes the flag, by the foreign key), while the acknowledgement's audit record stays.

Whether a therapist may see a flag is the questionnaire's own ``private``: readers join to it, so
a private flag cannot be read by anyone but its patient.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin


class SafetyFlag(IdMixin, Base):
    __tablename__ = "safety_flags"
    __table_args__ = (Index("ix_safety_flags_owner_received", "owner_id", "received_at", "id"),)
    # The acknowledgement's note is free text about the patient: sealed as journal text is.
    encrypted: ClassVar[dict[str, str]] = {"note": "text"}

    # The patient (named as journal entries name theirs, so re-encryption treats it alike).
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    assessment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assessments.id", ondelete="CASCADE"), unique=True
    )
    item_value: Mapped[int] = mapped_column(Integer)  # PHQ-9 item 9's answer, 1-3
    completed_at: Mapped[datetime]
    received_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    # No foreign keys: who acknowledged stays known (as an id) after that account is erased.
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    acknowledged_grant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
