from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query

from api.auth.dependencies import OwnScope, SettingsDep
from api.database import SessionDep
from api.errors import BadRequest, problems
from api.models.base import utcnow
from api.routing import api_router
from api.summary.schemas import Summary
from api.summary.service import build_summary, time_zone_of
from api.time_zones import IANA_HINT, is_iana

router = api_router(prefix="/v1/me", tags=["summary"])

Days = Annotated[
    int, Query(ge=1, le=365, description="How many days of daily mood, ending today, 1-365.")
]
Tz = Annotated[
    str | None,
    Query(
        max_length=64,
        description="IANA time zone the days are counted in, e.g. `Europe/Berlin`; default the "
        "patient's account time zone.",
    ),
]


def parse_tz(name: str) -> ZoneInfo:
    if not is_iana(name):
        raise BadRequest(f"`tz` must be {IANA_HINT}.")
    return ZoneInfo(name)


@router.get("/summary", responses=problems(400, 401, 403, 422))
async def get_my_summary(
    scope: OwnScope, session: SessionDep, settings: SettingsDep, days: Days = 30, tz: Tz = None
) -> Summary:
    """Your journal in figures: daily mood, questionnaire scores against baseline (meaningful change, and response
    and remission where they can be judged), mood before and after each dosing session, and every open safety flag
    with crisis resources. Days are counted in `tz`, or else in your account's time zone."""
    zone = tz if tz is not None else await time_zone_of(session, scope.owner_id)
    return await build_summary(
        session, scope, settings, days=days, tz=parse_tz(zone), tz_name=zone, now=utcnow()
    )
