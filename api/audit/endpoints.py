from __future__ import annotations

from api.audit.schemas import AccessLogPage
from api.audit.service import access_log
from api.auth.dependencies import OwnScope
from api.database import SessionDep
from api.errors import problems
from api.paging import Cursor, Limit
from api.routing import api_router

router = api_router(prefix="/v1/me", tags=["privacy"])


@router.get("/access-log", responses=problems(400, 401, 403, 422))
async def get_access_log(
    scope: OwnScope, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> AccessLogPage:
    """Who read what of yours, and when, newest first: every therapist request for your data, allowed or refused."""
    return await access_log(session, scope.owner_id, limit, cursor)
