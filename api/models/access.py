"""Consent and its trail: the grants a patient gives, and every read a therapist makes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, IdMixin, utcnow


class ReadScope(StrEnum):
    """What a patient-scoped read token may read (SMART-style `patient/<kind>.read`)."""

    SESSIONS = "sessions:read"
    INTENTIONS = "intentions:read"
    REFLECTIONS = "reflections:read"
    CHECKINS = "checkins:read"
    ASSESSMENTS = "assessments:read"
    SUMMARY = "summary:read"


class GrantState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Grant(IdMixin, Base):
    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_patient_created", "patient_id", "created_at", "id"),
        Index("ix_grants_therapist_created", "therapist_id", "created_at", "id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(16), default=None)
    # The patient's display name as the therapist sees it: kept up to date while the grant is
    # live, and left as it was once the grant ends, so a later rename does not reach them.
    patient_name: Mapped[str] = mapped_column(String(100))

    def state(self, now: datetime) -> GrantState:
        if self.revoked_at is not None:
            return GrantState.REVOKED
        if self.expires_at <= now:
            return GrantState.EXPIRED
        return GrantState.ACTIVE


class AuditOutcome(StrEnum):
    ALLOWED = "allowed"
    NO_GRANT = "no_grant"  # revoked, expired, or never given
    INSUFFICIENT_SCOPE = "insufficient_scope"
    NOT_FOUND = "not_found"


class AuditRecord(IdMixin, Base):
    """One therapist request for patient data, allowed or refused. Append-only: no route changes
    or removes one, and on PostgreSQL a trigger refuses UPDATE and DELETE.

    Ids are kept without foreign keys on purpose: the trail must outlive what it points at.
    """

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_patient_at", "patient_id", "at", "id"),)

    at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    therapist_id: Mapped[uuid.UUID]
    patient_id: Mapped[uuid.UUID]
    grant_id: Mapped[uuid.UUID | None]
    resource: Mapped[str] = mapped_column(String(32))
    # "list", "read" or "summary"; "open" for a read token minted (resource "grant"), "list"
    # with resource "patients" for being listed among a therapist's patients.
    action: Mapped[str] = mapped_column(String(16))
    entry_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    count: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[AuditOutcome] = mapped_column(String(32))
