from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


# The outer shape of the FHIR export (`format=fhir`): a FHIR R4 Bundle of type `collection` whose
# every entry has a `urn:uuid:` fullUrl and a resource with a type and an id. What is inside each
# resource is FHIR R4's to define (https://hl7.org/fhir/R4/bundle.html); the export is checked
# against it by Medplum's validator in the tests.
FHIR_BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "FhirBundle",
    "description": "A FHIR R4 Bundle (type `collection`) of the journal. Every reference inside it "
    "is to the `urn:uuid:` fullUrl of an entry of the same Bundle.",
    "required": ["resourceType", "id", "type", "timestamp", "entry"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "id": {"type": "string"},
        "type": {"type": "string", "enum": ["collection"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["fullUrl", "resource"],
                "properties": {
                    "fullUrl": {"type": "string", "pattern": "^urn:uuid:[0-9a-f-]{36}$"},
                    "resource": {
                        "type": "object",
                        "description": "A FHIR R4 resource: CodeSystem, Patient, "
                        "MedicationAdministration, Observation, QuestionnaireResponse, Flag or "
                        "DocumentReference.",
                        "required": ["resourceType", "id"],
                        "additionalProperties": True,
                        "properties": {
                            "resourceType": {
                                "type": "string",
                                "enum": [
                                    "CodeSystem",
                                    "Patient",
                                    "MedicationAdministration",
                                    "Observation",
                                    "QuestionnaireResponse",
                                    "Flag",
                                    "DocumentReference",
                                ],
                            },
                            "id": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}
