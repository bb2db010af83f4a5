from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.assessments.schemas import AssessmentRead
from api.checkins.schemas import CheckinRead
from api.intentions.schemas import IntentionRead
from api.reflections.schemas import ReflectionRead
from api.sessions.schemas import DosingSessionRead

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
    model_config = ConfigDict(extra="forbid")

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

    results: list[OperationResult]
