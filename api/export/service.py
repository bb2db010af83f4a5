"""Gathers the patient's copy of everything, through the same scoped repositories as every read."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.schemas import AccountRead
from api.audit import service as audit
from api.audit.repository import every_for_patient
from api.auth.dependencies import Caller
from api.export.schemas import DeletionMarker, JournalExport, Refresh, SignIn, StoredAnswer
from api.grants import service as grants
from api.grants.repository import GrantRepository
from api.journal import idempotency
from api.journal.repository import EntryRepository, Scope
from api.models import Login, RefreshToken, Tombstone, WebSession
from api.models.base import utcnow
from api.resources import RESOURCES
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
        sign_ins=await _sign_ins(session, caller),
        deletions=await _deletions(session, caller),
        stored_answers=await _stored_answers(session, caller, settings),
        **journal,
    )


async def _sign_ins(session: AsyncSession, caller: Caller) -> list[SignIn]:
    logins = (
        await session.scalars(
            select(Login).where(Login.account_id == caller.id).order_by(Login.created_at, Login.id)
        )
    ).all()
    ids = [login.id for login in logins]
    web = (
        set(
            (
                await session.scalars(
                    select(WebSession.login_id).where(WebSession.login_id.in_(ids))
                )
            ).all()
        )
        if ids
        else set()
    )
    refreshes: dict[uuid.UUID, list[Refresh]] = {login_id: [] for login_id in ids}
    if ids:
        tokens = await session.execute(
            select(
                RefreshToken.login_id,
                RefreshToken.created_at,
                RefreshToken.expires_at,
                RefreshToken.rotated_at,
            )
            .where(RefreshToken.login_id.in_(ids))
            .order_by(RefreshToken.created_at, RefreshToken.id)
        )
        for login_id, issued, expires, used in tokens.all():
            refreshes[login_id].append(Refresh(issued_at=issued, expires_at=expires, used_at=used))
    return [
        SignIn(
            id=login.id,
            started_at=login.created_at,
            ended_at=login.revoked_at,
            client="web" if login.id in web else "app",
            refreshes=refreshes[login.id],
        )
        for login in logins
    ]


async def _deletions(session: AsyncSession, caller: Caller) -> list[DeletionMarker]:
    rows = await session.scalars(
        select(Tombstone).where(Tombstone.owner_id == caller.id).order_by(Tombstone.seq)
    )
    return [
        DeletionMarker(id=row.id, resource=row.resource, deleted_at=row.deleted_at)
        for row in rows.all()
    ]


async def _stored_answers(
    session: AsyncSession, caller: Caller, settings: Settings
) -> list[StoredAnswer]:
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    return [
        StoredAnswer(
            idempotency_key=record.key,
            created_at=record.created_at,
            expires_at=record.created_at + ttl,
            status=record.status_code,
            answer=_without_credentials(answer),
        )
        for record, answer in await idempotency.stored_answers(session, caller.id)
    ]


# A sign-in or refresh sent with an Idempotency-Key keeps its answer (the new token pair) for a
# replay. The export says such an answer is kept, and when it goes, but never hands out the
# credentials themselves: a copy of the journal must not be a way into the account.
CREDENTIALS = frozenset({"access_token", "refresh_token"})
WITHHELD = "(withheld: a credential)"


def _without_credentials(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {name: WITHHELD if name in CREDENTIALS else value for name, value in answer.items()}
    return answer
