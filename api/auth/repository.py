from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.tokens import CLOCK_SKEW
from api.models import Account, Login, RefreshToken, RevokedReadToken, Role


@dataclass(frozen=True)
class RefreshRecord:
    login_id: uuid.UUID
    account_id: uuid.UUID
    role: Role
    expires_at: datetime
    rotated: bool
    login_revoked: bool


class LoginRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(self, account_id: uuid.UUID) -> Login:
        login = Login(account_id=account_id)
        self.session.add(login)
        await self.session.flush()
        return login

    async def add_refresh_token(
        self, login_id: uuid.UUID, token_hash: bytes, expires_at: datetime
    ) -> None:
        self.session.add(
            RefreshToken(login_id=login_id, token_hash=token_hash, expires_at=expires_at)
        )
        await self.session.flush()

    async def find_refresh(self, token_hash: bytes) -> RefreshRecord | None:
        row = (
            await self.session.execute(
                select(
                    RefreshToken.login_id,
                    Login.account_id,
                    Account.role,
                    RefreshToken.expires_at,
                    RefreshToken.rotated_at,
                    Login.revoked_at,
                )
                .join(Login, Login.id == RefreshToken.login_id)
                .join(Account, Account.id == Login.account_id)
                .where(RefreshToken.token_hash == token_hash)
            )
        ).one_or_none()
        if row is None:
            return None
        return RefreshRecord(
            login_id=row.login_id,
            account_id=row.account_id,
            role=row.role,
            expires_at=row.expires_at,
            rotated=row.rotated_at is not None,
            login_revoked=row.revoked_at is not None,
        )

    async def mark_rotated(self, token_hash: bytes, at: datetime) -> bool:
        """Claim the token for one exchange; False when another request claimed it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=at)
            .returning(RefreshToken.id)
        )
        return result.scalar_one_or_none() is not None

    async def revoke(self, login_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(Login)
            .where(Login.id == login_id, Login.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def revoke_read_token(self, jti: str, expires_at: datetime, now: datetime) -> None:
        """Remember a revoked read token for as long as it would be accepted: until its expiry
        and the clock skew allowed past it (``CLOCK_SKEW``). Forget the ones past that, so the
        table holds about 15 minutes of revocations."""
        await self.session.execute(
            delete(RevokedReadToken).where(RevokedReadToken.expires_at <= now - CLOCK_SKEW)
        )
        # Revoked twice at once: the second insert does nothing, rather than fail.
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await self.session.execute(
            insert(RevokedReadToken)
            .values(jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["jti"])
        )
