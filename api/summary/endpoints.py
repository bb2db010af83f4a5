from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Query

from api.auth.dependencies import SettingsDep
from api.database import SessionDep
from api.errors import BadRequest, problems
from api.journal.endpoints import OwnScope
from api.models.base import utcnow
from api.routing import api_router
from api.summary.schemas import Summary
from api.summary.service import build_summary

router = api_router(prefix="/v1/me", tags=["summary"])

Days = Annotated[
    int, Query(ge=1, le=365, description="How many days of daily mood, ending today, 1-365.")
]
Tz = Annotated[
    str,
    Query(
        max_length=64, description="IANA time zone the days are counted in, e.g. `Europe/Berlin`."
    ),
]


def parse_tz(name: str) -> ZoneInfo:
    # Only names in the IANA list: ZoneInfo would also take file names such as "localtime".
    if name not in _iana_names():
        raise BadRequest("`tz` must be an IANA time zone name such as `Europe/Berlin`.")
    return ZoneInfo(name)


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@router.get("/summary", responses=problems(400, 401, 403, 422))
async def get_my_summary(
    scope: OwnScope, session: SessionDep, settings: SettingsDep, days: Days = 30, tz: Tz = "UTC"
) -> Summary:
    """Your journal in figures: daily mood, questionnaire scores against baseline (response, remission), mood before
    and after each dosing session, and safety flags of the last 14 days with crisis resources."""
    return await build_summary(
        session, scope, settings, days=days, tz=parse_tz(tz), tz_name=tz, now=utcnow()
    )
