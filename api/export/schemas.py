from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from api.accounts.schemas import ACCOUNT_EXAMPLE, AccountRead
from api.audit.schemas import ACCESS_LOG_EXAMPLE, AccessLogEntry
from api.grants.schemas import GRANT_EXAMPLE, GrantRead
from api.journal.schemas import ReadT, ResourceName
from api.resources import RESOURCES
from api.safety_flags.schemas import FLAG_EXAMPLE, SafetyFlagRead


class Refresh(BaseModel):
    """One refresh token of a sign-in: when it was issued, until when, and when it was used."""

    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None


class SignIn(BaseModel):
    """One sign-in (a login) and its refreshes. Tokens themselves are never stored or shown."""

    id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = Field(description="Signed out, revoked, or the password changed.")
    client: Literal["app", "web"] = Field(
        description="`web`: the therapist pages; `app`: the token endpoint (the app or the API)."
    )
    refreshes: list[Refresh]


class DeletionMarker(BaseModel):
    """An entry you deleted: only its id and kind are kept, so other devices learn of it."""

    id: uuid.UUID
    resource: ResourceName
    deleted_at: datetime


class StoredAnswer(BaseModel):
    """The first answer to a request sent with an Idempotency-Key, kept for replays until
    `expires_at` (or until what it created is deleted)."""

    idempotency_key: str
    created_at: datetime
    expires_at: datetime
    status: int
    answer: Any = Field(description="The answer as it was sent; null if it cannot be read.")


class _ExportHead(BaseModel):
    """Everything the service holds about you, private entries included."""

    # A key no field has is refused, never dropped: a kind forgotten here would vanish from the
    # patient's copy of their data.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "format": "kap-journal-export/1",
                    "exported_at": "2026-11-21T10:00:00Z",
                    "account": ACCOUNT_EXAMPLE,
                    **{resource.name: [resource.example] for resource in RESOURCES},
                    "safety_flags": [FLAG_EXAMPLE],
                    "grants": [GRANT_EXAMPLE],
                    "access_log": [ACCESS_LOG_EXAMPLE],
                    "sign_ins": [
                        {
                            "id": "0b9f1f57-3c59-4f7e-a1b4-2f0f3c7e3a11",
                            "started_at": "2026-11-20T08:00:00Z",
                            "ended_at": None,
                            "client": "app",
                            "refreshes": [
                                {
                                    "issued_at": "2026-11-20T08:00:00Z",
                                    "expires_at": "2026-12-20T08:00:00Z",
                                    "used_at": None,
                                }
                            ],
                        }
                    ],
                    "deletions": [
                        {
                            "id": "5f0c1d7e-6a8b-4c2d-9e3f-1a2b3c4d5e6f",
                            "resource": "checkins",
                            "deleted_at": "2026-11-20T09:00:00Z",
                        }
                    ],
                    "stored_answers": [],
                }
            ]
        },
    )

    format: Literal["kap-journal-export/1"] = "kap-journal-export/1"
    exported_at: datetime
    account: AccountRead

    def entries(self, read: type[ReadT]) -> list[ReadT]:
        """The entries of the kind ``read`` presents (the lists per kind are built from
        ``RESOURCES``, so the type checker knows them by this name only)."""
        (resource,) = (resource for resource in RESOURCES if resource.read is read)
        entries: list[ReadT] = getattr(self, resource.name)
        return entries


class _ExportTail(BaseModel):
    """What follows the entries, kind by kind (``JournalExport``)."""

    safety_flags: list[SafetyFlagRead] = Field(
        default=[],
        description="Every safety flag raised on your questionnaires, with its acknowledgement.",
    )
    grants: list[GrantRead] = Field(description="Every grant you gave, active or ended.")
    access_log: list[AccessLogEntry] = Field(
        description="Every therapist request for your data, oldest first."
    )
    sign_ins: list[SignIn] = Field(
        default_factory=list, description="Every sign-in to your account, oldest first."
    )
    deletions: list[DeletionMarker] = Field(
        default_factory=list, description="The entries you deleted, by id and kind only."
    )
    stored_answers: list[StoredAnswer] = Field(
        default_factory=list,
        description="First answers kept for Idempotency-Key replays, while they last.",
    )


if TYPE_CHECKING:

    class JournalExport(_ExportHead, _ExportTail):
        """What the type checker knows of the export: the head, the tail, and ``entries``."""

else:
    # The head, then one list per kind of entry in the order of ``RESOURCES``, then the tail.
    JournalExport = create_model(
        "JournalExport",
        __base__=_ExportHead,
        __doc__=_ExportHead.__doc__,
        **{resource.name: (list[resource.read], ...) for resource in RESOURCES},
        **{name: (info.annotation, info) for name, info in _ExportTail.model_fields.items()},
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
