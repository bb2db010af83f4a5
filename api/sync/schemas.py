from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.assessments.schemas import ASSESSMENT_EXAMPLE, AssessmentRead
from api.checkins.schemas import CHECKIN_EXAMPLE, CheckinRead
from api.intentions.schemas import INTENTION_EXAMPLE, IntentionRead
from api.reflections.schemas import REFLECTION_EXAMPLE, ReflectionRead
from api.sessions.schemas import SESSION_EXAMPLE, DosingSessionRead

ResourceName = Literal["sessions", "intentions", "reflections", "checkins", "assessments"]


class Changes(BaseModel):
    """Current versions of entries created or changed since the cursor, by resource."""

    sessions: list[DosingSessionRead] = []
    intentions: list[IntentionRead] = []
    reflections: list[ReflectionRead] = []
    checkins: list[CheckinRead] = []
    assessments: list[AssessmentRead] = []


class Deletions(BaseModel):
    """Ids of entries deleted since the cursor, by resource."""

    sessions: list[uuid.UUID] = []
    intentions: list[uuid.UUID] = []
    reflections: list[uuid.UUID] = []
    checkins: list[uuid.UUID] = []
    assessments: list[uuid.UUID] = []


class SyncPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changes": {
                        "sessions": [SESSION_EXAMPLE],
                        "intentions": [INTENTION_EXAMPLE],
                        "reflections": [REFLECTION_EXAMPLE],
                        "checkins": [CHECKIN_EXAMPLE],
                        "assessments": [ASSESSMENT_EXAMPLE],
                    },
                    "deleted": {
                        "sessions": [],
                        "intentions": [],
                        "reflections": [],
                        "checkins": ["c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc"],
                        "assessments": [],
                    },
                    "next_cursor": "7",
                    "has_more": False,
                }
            ]
        }
    )

    changes: Changes
    deleted: Deletions
    next_cursor: str = Field(
        description="Pass as `cursor` next time. Unchanged when nothing changed."
    )
    has_more: bool = Field(description="More changes wait: call again with `next_cursor` at once.")


class SyncOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["create", "update", "delete"]
    resource: ResourceName
    id: uuid.UUID | None = Field(
        default=None, description="Required for update and delete; your own id for create."
    )
    if_match: Annotated[str, Field(max_length=100)] | None = Field(
        default=None, description="The entry's ETag, required for update and delete."
    )
    data: dict[str, Any] | None = Field(
        default=None,
        description="For create and update: the same body the resource's own POST or PATCH takes.",
    )


class SyncBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "operations": [
                        {
                            "op": "create",
                            "resource": "checkins",
                            "id": "7d1c2b9e-5f0a-4c8e-9b61-2a4f0e3d8c57",
                            "data": {"recorded_at": "2026-11-21T08:30:00+01:00", "mood": 6},
                        },
                        {
                            "op": "update",
                            "resource": "intentions",
                            "id": "3a922d48-d0bb-444d-85c1-33a2d269af5b",
                            "if_match": '"1"',
                            "data": {"status": "revisited"},
                        },
                        {
                            "op": "delete",
                            "resource": "checkins",
                            "id": "c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc",
                            "if_match": '"2"',
                        },
                    ]
                }
            ]
        },
    )

    operations: list[SyncOperation] = Field(min_length=1, max_length=200)


class OperationResult(BaseModel):
    op: str
    resource: str
    id: uuid.UUID
    status: int = Field(
        description="What the resource's own route would have answered: 201, 200 or 204."
    )
    etag: str | None


class SyncResult(BaseModel):
    """What each operation did. No cursor: another device's changes may lie between your last pull
    and this batch, so keep pulling from your own `next_cursor` (your writes come back too)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "op": "create",
                            "resource": "checkins",
                            "id": "7d1c2b9e-5f0a-4c8e-9b61-2a4f0e3d8c57",
                            "status": 201,
                            "etag": '"1"',
                        },
                        {
                            "op": "update",
                            "resource": "intentions",
                            "id": "3a922d48-d0bb-444d-85c1-33a2d269af5b",
                            "status": 200,
                            "etag": '"2"',
                        },
                        {
                            "op": "delete",
                            "resource": "checkins",
                            "id": "c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc",
                            "status": 204,
                            "etag": None,
                        },
                    ]
                }
            ]
        }
    )

    results: list[OperationResult]
