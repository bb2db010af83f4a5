from __future__ import annotations

from typing import Any

from api.journal.references import check_intentions, check_session
from api.journal.resource import Resource, WriteContext
from api.models import Reflection
from api.reflections.schemas import ReflectionCreate, ReflectionRead, ReflectionUpdate


async def prepare(context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    await check_session(context, values)
    await check_intentions(context, values)
    return values


REFLECTIONS = Resource(
    name="reflections",
    singular="reflection",
    noun="reflection",
    nouns="reflections",
    label="Reflection",
    description="Post-session reflections: text, prompts, emotions, intentions revisited.",
    model=Reflection,
    create=ReflectionCreate,
    update=ReflectionUpdate,
    read=ReflectionRead,
    prepare=prepare,
)
