"""Every ORM model, imported here so Alembic and the app see the whole schema."""

from api.models.access import AuditOutcome, AuditRecord, Grant, GrantState, ReadScope
from api.models.account import Account, Role
from api.models.base import Base
from api.models.erasure import Erasure
from api.models.journal import (
    JOURNAL_MODELS,
    Assessment,
    Checkin,
    DosingSession,
    Intention,
    IntentionStatus,
    JournalEntry,
    Reflection,
    Route,
    Setting,
)
from api.models.login import Login, RefreshToken
from api.models.safety_flag import SafetyFlag
from api.models.sync import ChangeCounter, IdempotencyRecord, Tombstone
from api.models.therapist import (
    PairingCode,
    RevokedReadToken,
    StrayRequest,
    TherapistInvitation,
)
from api.models.web_session import WebSession

__all__ = [
    "JOURNAL_MODELS",
    "Account",
    "Assessment",
    "AuditOutcome",
    "AuditRecord",
    "Base",
    "ChangeCounter",
    "Checkin",
    "DosingSession",
    "Erasure",
    "Grant",
    "GrantState",
    "IdempotencyRecord",
    "Intention",
    "IntentionStatus",
    "JournalEntry",
    "Login",
    "PairingCode",
    "ReadScope",
    "Reflection",
    "RefreshToken",
    "RevokedReadToken",
    "Role",
    "Route",
    "SafetyFlag",
    "Setting",
    "StrayRequest",
    "TherapistInvitation",
    "Tombstone",
    "WebSession",
]
