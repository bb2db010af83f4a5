from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.accounts.schemas import AccountRead
from api.assessments.schemas import AssessmentRead
from api.audit.schemas import AccessLogEntry
from api.checkins.schemas import CheckinRead
from api.grants.schemas import GrantRead
from api.intentions.schemas import IntentionRead
from api.reflections.schemas import ReflectionRead
from api.sessions.schemas import DosingSessionRead


class JournalExport(BaseModel):
    """Everything the service holds about you, private entries included."""

    format: Literal["kap-journal-export/1"] = "kap-journal-export/1"
    exported_at: datetime
    account: AccountRead
    sessions: list[DosingSessionRead]
    intentions: list[IntentionRead]
    reflections: list[ReflectionRead]
    checkins: list[CheckinRead]
    assessments: list[AssessmentRead]
    grants: list[GrantRead] = Field(description="Every grant you gave, active or ended.")
    access_log: list[AccessLogEntry] = Field(
        description="Every therapist request for your data, oldest first."
    )
