"""Entries may point at other entries of the same patient; pointing anywhere else is refused with
the same answer as pointing at nothing, so it reveals nothing."""

from __future__ import annotations

import uuid
from typing import Any

from api.errors import UnprocessableContent
from api.journal.repository import EntryRepository
from api.journal.resource import WriteContext
from api.models import DosingSession, Intention


async def check_session(context: WriteContext, values: dict[str, Any]) -> None:
    session_id = values.get("session_id")
    if session_id is None:
        return
    sessions = EntryRepository(context.session, DosingSession, context.scope)
    if not await sessions.existing_ids([session_id]):
        raise UnprocessableContent("session_id does not name one of your dosing sessions.")


async def check_intentions(context: WriteContext, values: dict[str, Any]) -> None:
    ids: list[uuid.UUID] | None = values.get("intention_ids")
    if not ids:
        return
    intentions = EntryRepository(context.session, Intention, context.scope)
    if await intentions.existing_ids(ids) != set(ids):
        raise UnprocessableContent("intention_ids must all name intentions of yours.")
    # Stored as JSON, so as strings.
    values["intention_ids"] = [str(i) for i in ids]
