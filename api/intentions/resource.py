from __future__ import annotations

from typing import Any

from api.intentions.schemas import IntentionCreate, IntentionRead, IntentionUpdate
from api.journal.references import check_session
from api.journal.resource import Resource, WriteContext
from api.models import Intention


async def prepare(context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    await check_session(context, values)
    return values


INTENTIONS = Resource(
    name="intentions",
    singular="intention",
    noun="intention",
    nouns="intentions",
    label="Intention",
    description="What the patient wants to work on, optionally tied to a session.",
    model=Intention,
    create=IntentionCreate,
    update=IntentionUpdate,
    read=IntentionRead,
    prepare=prepare,
)
