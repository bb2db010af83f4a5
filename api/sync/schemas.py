from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.config import JsonDict

from api.checkins.schemas import CHECKIN_EXAMPLE
from api.errors import ValidationIssue
from api.intentions.schemas import INTENTION_EXAMPLE
from api.journal.schemas import ResourceName
from api.resources import RESOURCES

# A group per kind of entry, from ``RESOURCES``; a key no kind has is refused, never dropped (a
# kind forgotten here would vanish from sync while the cursor moved past it).
BY_KIND = ConfigDict(extra="forbid")

_changes: dict[str, Any] = {resource.name: (list[resource.read], []) for resource in RESOURCES}  # type: ignore[name-defined]
Changes = create_model(
    "Changes",
    __config__=BY_KIND,
    __doc__="Current versions of entries created or changed since the cursor, by resource.",
    **_changes,
)
_deletions: dict[str, Any] = {resource.name: (list[uuid.UUID], []) for resource in RESOURCES}
Deletions = create_model(
    "Deletions",
    __config__=BY_KIND,
    __doc__="Ids of entries deleted since the cursor, by resource.",
    **_deletions,
)


class SyncPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changes": {resource.name: [resource.example] for resource in RESOURCES},
                    "deleted": {
                        **{resource.name: [] for resource in RESOURCES},
                        "checkins": ["c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc"],
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
        default=None,
        description="For update and delete: the ETag of the version the change was made against "
        "(the version you last pulled, not one you expect after your own earlier operations).",
    )
    data: dict[str, Any] | None = Field(
        default=None,
        description="For create and update: the same body the resource's own POST or PATCH takes.",
    )

    @model_validator(mode="after")
    def _id_for_update_and_delete(self) -> SyncOperation:
        if self.op != "create" and self.id is None:
            raise ValueError("`id` is required for update and delete")
        return self


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
    atomic: bool = Field(
        default=False,
        description="All or nothing: the first operation rejected or in conflict undoes the "
        "batch, answered as that operation's problem with its index as `operation`. By default "
        "every operation that can be applied is, and each is answered on its own.",
    )


class OperationProblem(BaseModel):
    """Why an operation was rejected or is in conflict: an RFC 9457 problem for it alone."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ValidationIssue] | None = Field(
        default=None, description="For invalid data: the fields, as in a 422 problem."
    )


class OperationResult(BaseModel):
    op: Literal["create", "update", "delete"]
    resource: ResourceName
    id: uuid.UUID
    status: int = Field(
        description="What the resource's own route would have answered: 201, 200 or 204 when "
        "applied or replayed; the problem's status when rejected or in conflict."
    )
    etag: str | None = Field(description="The entry's ETag now; null when there is no entry.")
    outcome: Literal["applied", "replayed", "conflict", "rejected"] = Field(
        default="applied",
        description="`applied`: written now. `replayed`: nothing needed doing (a create or edit "
        "already stored, a delete of an id already deleted or never stored). `conflict`: made "
        "against an older version than the server's, or on an entry deleted meanwhile; nothing "
        "written, `current` is the entry as it is now (null when deleted). `rejected`: cannot be "
        "applied (`problem` says why); retrying it unchanged will not help.",
    )
    problem: OperationProblem | None = Field(
        default=None, description="For `conflict` and `rejected`."
    )
    current: dict[str, Any] | None = Field(
        default=None,
        description="For `conflict`: the server's current entry, as the resource's GET answers "
        "it; null when it was deleted.",
    )
    notes: list[str] = Field(
        default=[],
        description="What the server did that a live request would have refused: a reference to "
        "an entry that went away cleared, a time from a clock running ahead replaced by the "
        "receipt time (the entry is then `clock_adjusted`).",
    )


class SyncResult(BaseModel):
    """What each operation did, in the order sent. No cursor: another device's changes may lie
    between your last pull and this batch, so keep pulling from your own `next_cursor` (your
    writes come back too)."""

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
                            "outcome": "applied",
                            "problem": None,
                            "current": None,
                            "notes": [],
                        },
                        {
                            "op": "update",
                            "resource": "intentions",
                            "id": "3a922d48-d0bb-444d-85c1-33a2d269af5b",
                            "status": 412,
                            "etag": '"3"',
                            "outcome": "conflict",
                            "problem": {
                                "type": "/problems/precondition-failed",
                                "title": "Precondition Failed",
                                "status": 412,
                                "detail": "The entry has changed since you read it: read it "
                                "again and retry.",
                                "errors": None,
                            },
                            "current": {**INTENTION_EXAMPLE, "version": 3},
                            "notes": [],
                        },
                        {
                            "op": "delete",
                            "resource": "checkins",
                            "id": "c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc",
                            "status": 204,
                            "etag": None,
                            "outcome": "replayed",
                            "problem": None,
                            "current": None,
                            "notes": [],
                        },
                    ]
                }
            ]
        }
    )

    results: list[OperationResult]


# --- WatermelonDB's protocol (api.sync.watermelondb) ---------------------------------------------


class WatermelonTable(BaseModel):
    created: list[dict[str, Any]] = Field(
        description="Entries created since `last_pulled_at`, as WatermelonDB raw records."
    )
    updated: list[dict[str, Any]] = Field(
        description="Entries changed since, in their current version (or created and changed "
        "since, which WatermelonDB creates when it does not hold them)."
    )
    deleted: list[str] = Field(description="Ids of entries deleted since.")


_tables: dict[str, Any] = {resource.name: (WatermelonTable, ...) for resource in RESOURCES}
WatermelonChanges = create_model("WatermelonChanges", __config__=BY_KIND, **_tables)


_EMPTY_TABLE: JsonDict = {"created": [], "updated": [], "deleted": []}


class WatermelonPull(BaseModel):
    """What WatermelonDB's `pullChanges` returns: `{changes, timestamp}`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changes": {
                        **{resource.name: _EMPTY_TABLE for resource in RESOURCES},
                        "checkins": {
                            "created": [
                                {
                                    "id": "3e6f4ecb-2e3a-4010-a603-ae8aa65360fe",
                                    "private": False,
                                    "version": 1,
                                    "created_at": 1795678262118,
                                    "updated_at": 1795678262118,
                                    "clock_adjusted": False,
                                    "recorded_at": 1795678200000,
                                    "backfilled": False,
                                    "mood": 6,
                                    "anxiety": 3,
                                    "energy": None,
                                    "sleep_hours": 7.5,
                                    "note": "Slept well; a quiet morning.",
                                    "received_at": 1795678262118,
                                }
                            ],
                            "updated": [],
                            "deleted": ["c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc"],
                        },
                    },
                    "timestamp": 9,
                }
            ]
        }
    )

    changes: WatermelonChanges
    timestamp: int = Field(
        ge=1,
        description="Pass as `last_pulled_at` next time (WatermelonDB does so itself): a change "
        "number plus one, never 0, and not a time.",
    )


class WatermelonTableChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    created: list[dict[str, Any]] = Field(default=[], max_length=1000)
    updated: list[dict[str, Any]] = Field(default=[], max_length=1000)
    deleted: list[Any] = Field(default=[], max_length=1000)


class WatermelonPush(BaseModel):
    """What WatermelonDB's `pushChanges` is given: `{changes, lastPulledAt}`, sent as is."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "last_pulled_at": 8,
                    "changes": {
                        "checkins": {
                            "created": [
                                {
                                    "id": "7d1c2b9e-5f0a-4c8e-9b61-2a4f0e3d8c57",
                                    "recorded_at": 1795595400000,
                                    "mood": 6,
                                    "anxiety": None,
                                    "energy": None,
                                    "sleep_hours": None,
                                    "note": None,
                                    "private": False,
                                    "_status": "created",
                                    "_changed": "",
                                }
                            ],
                            "updated": [],
                            "deleted": ["c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc"],
                        }
                    },
                }
            ]
        },
    )

    last_pulled_at: int | None = Field(
        ge=1,
        description="The `timestamp` of the pull this push follows (WatermelonDB's `lastPulledAt`).",
    )
    changes: dict[ResourceName, WatermelonTableChanges]


class WatermelonPushResult(BaseModel):
    """Records not applied, in the shape `experimentalRejectedIds` expects (WatermelonDB keeps them
    as local changes and pushes them again), and what was done with each record."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experimentalRejectedIds": {
                        "checkins": ["c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc"]
                    },
                    "results": {
                        "checkins": [
                            {
                                "op": "create",
                                "resource": "checkins",
                                "id": "7d1c2b9e-5f0a-4c8e-9b61-2a4f0e3d8c57",
                                "status": 201,
                                "etag": '"1"',
                                "outcome": "applied",
                                "problem": None,
                                "current": None,
                                "notes": [],
                            },
                            {
                                "op": "delete",
                                "resource": "checkins",
                                "id": "c29bfda9-4ffd-4edb-a8b1-74a85fb9b3bc",
                                "status": 412,
                                "etag": '"2"',
                                "outcome": "conflict",
                                "problem": {
                                    "type": "/problems/precondition-failed",
                                    "title": "Precondition Failed",
                                    "status": 412,
                                    "detail": "The entry has changed since you read it: read it "
                                    "again and retry.",
                                    "errors": None,
                                },
                                "current": {**CHECKIN_EXAMPLE, "version": 2},
                                "notes": [],
                            },
                        ]
                    },
                }
            ]
        }
    )

    experimentalRejectedIds: dict[str, list[str]] = Field(  # WatermelonDB's own name
        description="By table, the ids of records rejected or in conflict."
    )
    results: dict[str, list[OperationResult]] = Field(
        description="By table, each record's result as `POST /v1/sync` gives it: conflicts carry "
        "the server's current entry."
    )
