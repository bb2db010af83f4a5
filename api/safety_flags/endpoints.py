"""Safety flags: the patient's own list, a therapist's list, and the acknowledgement.

No `from __future__ import annotations`: the read-token dependencies are built per route and
FastAPI must see them as objects.
"""

import uuid
from typing import Annotated

from fastapi import Depends

from api.auth.dependencies import OwnScope
from api.database import SessionDep
from api.errors import NotFound, problems
from api.models import AuditOutcome
from api.models.base import utcnow
from api.patients.access import ReadAccess, require
from api.patients.endpoints import READ_ERRORS
from api.routing import api_router
from api.safety_flags import service
from api.safety_flags.repository import FLAG_SCOPES
from api.safety_flags.schemas import Acknowledgement, SafetyFlagList, SafetyFlagRead

own_router = api_router(prefix="/v1/me", tags=["safety flags"])
therapist_router = api_router(prefix="/v1/patients", tags=["therapist"])
NO_FLAG = "No safety flag with this id."


@own_router.get("/safety-flags", responses=problems(401, 403))
async def list_my_safety_flags(scope: OwnScope, session: SessionDep) -> SafetyFlagList:
    """Every safety flag raised on your PHQ-9s (item 9 above 0), newest first: open until a therapist acknowledges it,
    then who acknowledged it and when. Each says whether any therapist can see it."""
    return SafetyFlagList(items=await service.flags(session, scope, now=utcnow()))


ListAccess = Annotated[ReadAccess, Depends(require(FLAG_SCOPES, "safety_flags", "list"))]
AcknowledgeAccess = Annotated[
    ReadAccess, Depends(require(FLAG_SCOPES, "safety_flags", "acknowledge"))
]


@therapist_router.get("/{patient_id}/safety-flags", responses=READ_ERRORS)
async def list_safety_flags(access: ListAccess) -> SafetyFlagList:
    """The patient's safety flags on shared questionnaires, open and acknowledged, newest first
    (`assessments:read` or `summary:read`). Flags on private questionnaires never appear."""
    items = await service.flags(access.session, access.scope, now=utcnow())
    await access.allowed([flag.id for flag in items])
    return SafetyFlagList(items=items)


@therapist_router.post(
    "/{patient_id}/safety-flags/{flag_id}/acknowledgement",
    responses=problems(
        400,
        401,
        403,
        404,
        413,
        422,
        d401="No valid read token, or its grant was revoked or has expired.",
        d403="The token carries neither `assessments:read` nor `summary:read`.",
        d404="No such patient for this token, or no such flag (flags on private questionnaires do not exist here).",
    ),
)
async def acknowledge_safety_flag(
    flag_id: uuid.UUID, data: Acknowledgement, access: AcknowledgeAccess
) -> SafetyFlagRead:
    """Say you have seen a safety flag (body `{}`, or `{"note": "..."}` with a short note, stored encrypted), with a read token carrying
    `assessments:read` or `summary:read`. The flag is then closed; the patient sees who acknowledged it and when,
    here and in their access log. Acknowledging a flag again answers with the first acknowledgement, unchanged."""
    acknowledged = await service.acknowledge(
        access.session,
        access.scope,
        flag_id,
        therapist_id=access.therapist_id,
        grant_id=access.grant_id,
        note=data.note,
    )
    if acknowledged is None:
        raise await access.refuse(AuditOutcome.NOT_FOUND, NotFound(NO_FLAG))
    await access.allowed([acknowledged.id])
    return acknowledged
