from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api.checkins.schemas import CheckinCreate, CheckinRead, CheckinUpdate
from api.journal.resource import Resource, WriteContext
from api.models import Checkin

BACKFILL_AFTER = timedelta(hours=24)


def is_backfilled(recorded_at: datetime, received_at: datetime) -> bool:
    return received_at - recorded_at > BACKFILL_AFTER


async def prepare(context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    if "recorded_at" in values:
        # Measured against when the server first received the check-in, also on edits.
        received_at = context.existing.created_at if context.existing else context.now
        values["backfilled"] = is_backfilled(values["recorded_at"], received_at)
    return values


CHECKINS = Resource(
    name="checkins",
    singular="checkin",
    noun="mood check-in",
    nouns="mood check-ins",
    label="Check-in",
    description="Quick mood check-ins: mood, anxiety, energy, sleep, note.",
    model=Checkin,
    create=CheckinCreate,
    update=CheckinUpdate,
    read=CheckinRead,
    prepare=prepare,
)
