from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.accounts.schemas import ACCOUNT_EXAMPLE, AccountRead
from api.assessments.schemas import ASSESSMENT_EXAMPLE, AssessmentRead
from api.audit.schemas import ACCESS_LOG_EXAMPLE, AccessLogEntry
from api.checkins.schemas import CHECKIN_EXAMPLE, CheckinRead
from api.grants.schemas import GRANT_EXAMPLE, GrantRead
from api.intentions.schemas import INTENTION_EXAMPLE, IntentionRead
from api.reflections.schemas import REFLECTION_EXAMPLE, ReflectionRead
from api.safety_flags.schemas import FLAG_EXAMPLE, SafetyFlagRead
from api.sessions.schemas import SESSION_EXAMPLE, DosingSessionRead


class JournalExport(BaseModel):
    """Everything the service holds about you, private entries included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": "kap-journal-export/1",
                    "exported_at": "2026-11-21T10:00:00Z",
                    "account": ACCOUNT_EXAMPLE,
                    "sessions": [SESSION_EXAMPLE],
                    "intentions": [INTENTION_EXAMPLE],
                    "reflections": [REFLECTION_EXAMPLE],
                    "checkins": [CHECKIN_EXAMPLE],
                    "assessments": [ASSESSMENT_EXAMPLE],
                    "safety_flags": [FLAG_EXAMPLE],
                    "grants": [GRANT_EXAMPLE],
                    "access_log": [ACCESS_LOG_EXAMPLE],
                }
            ]
        }
    )

    format: Literal["kap-journal-export/1"] = "kap-journal-export/1"
    exported_at: datetime
    account: AccountRead
    sessions: list[DosingSessionRead]
    intentions: list[IntentionRead]
    reflections: list[ReflectionRead]
    checkins: list[CheckinRead]
    assessments: list[AssessmentRead]
    safety_flags: list[SafetyFlagRead] = Field(
        default=[],
        description="Every safety flag raised on your questionnaires, with its acknowledgement.",
    )
    grants: list[GrantRead] = Field(description="Every grant you gave, active or ended.")
    access_log: list[AccessLogEntry] = Field(
        description="Every therapist request for your data, oldest first."
    )
