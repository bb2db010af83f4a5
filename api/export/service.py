"""Gathers the patient's copy of everything, through the same scoped repositories as every read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.schemas import AccountRead
from api.audit import service as audit
from api.audit.repository import every_for_patient
from api.auth.dependencies import Caller
from api.export.schemas import JournalExport
from api.grants import service as grants
from api.grants.repository import GrantRepository
from api.journal.registry import RESOURCES
from api.journal.repository import EntryRepository, Scope
from api.models.base import utcnow
from api.safety_flags import service as safety_flags
from api.settings import Settings


async def gather(session: AsyncSession, caller: Caller, settings: Settings) -> JournalExport:
    scope = Scope.own(caller.id)
    journal: dict[str, list[Any]] = {}
    for resource in RESOURCES:
        rows = await EntryRepository(session, resource.model, scope).every()
        journal[resource.name] = [resource.present(resource, row, settings) for row in rows]
    given = await GrantRepository(session, caller.id, caller.role).every()
    trail = await every_for_patient(session, caller.id)
    return JournalExport(
        exported_at=utcnow(),
        account=AccountRead.model_validate(await caller.account(session)),
        safety_flags=await safety_flags.flags(session, scope, now=utcnow()),
        grants=[grants.present(row) for row in given],
        access_log=[audit.present(row) for row in trail],
        **journal,
    )
