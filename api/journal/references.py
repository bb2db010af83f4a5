"""Entries may point at other entries of the same patient; pointing anywhere else is refused with
the same answer as pointing at nothing, so it reveals nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import UnprocessableContent
from api.journal.repository import EntryRepository, Scope
from api.journal.resource import WriteContext
from api.models import DosingSession, Intention


async def check_session(context: WriteContext, values: dict[str, Any]) -> None:
    session_id = values.get("session_id")
    if session_id is None:
        return
    sessions = EntryRepository(context.session, DosingSession, context.scope)
    if not await sessions.existing_ids([session_id]):
        if context.leniency is not None:
            # A sync: the session was deleted elsewhere while this entry waited on a phone.
            values["session_id"] = None
            context.leniency.notes.append(
                "session_id cleared: it names no dosing session of yours (deleted elsewhere?)."
            )
            return
        raise UnprocessableContent(
            "session_id does not name one of your dosing sessions.", loc=("body", "session_id")
        )


async def check_intentions(context: WriteContext, values: dict[str, Any]) -> None:
    ids: list[uuid.UUID] | None = values.get("intention_ids")
    if not ids:
        return
    intentions = EntryRepository(context.session, Intention, context.scope)
    existing = await intentions.existing_ids(ids)
    if existing != set(ids):
        if context.leniency is None:
            raise UnprocessableContent(
                "intention_ids must all name intentions of yours.", loc=("body", "intention_ids")
            )
        ids = [i for i in ids if i in existing]
        context.leniency.notes.append(
            "intention_ids: ids naming no intention of yours (deleted elsewhere?) left out."
        )
    # Stored as JSON, so as strings.
    values["intention_ids"] = [str(i) for i in ids]


async def hide_unseen_references(
    session: AsyncSession, scope: Scope, items: Sequence[BaseModel]
) -> None:
    """In what someone other than the owner reads, a link to an entry they may not see (a private
    one, or any of a kind their grant does not cover) is dropped: its id would tell that it
    exists."""
    if scope.include_private or not items:
        return
    if not hasattr(items[0], "session_id") and not hasattr(items[0], "intention_ids"):
        return  # this kind of entry links to nothing
    linked_sessions = [s for item in items if (s := getattr(item, "session_id", None)) is not None]
    linked_intentions = [i for item in items for i in getattr(item, "intention_ids", [])]
    seen_sessions = (
        await EntryRepository(session, DosingSession, scope).existing_ids(linked_sessions)
        if scope.reads("sessions")
        else set()
    )
    seen_intentions = (
        await EntryRepository(session, Intention, scope).existing_ids(linked_intentions)
        if scope.reads("intentions")
        else set()
    )
    for item in items:
        if getattr(item, "session_id", None) not in seen_sessions and hasattr(item, "session_id"):
            item.session_id = None
        if hasattr(item, "intention_ids"):
            item.intention_ids = [i for i in item.intention_ids if i in seen_intentions]
