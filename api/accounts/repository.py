from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import Account, Login, Role
from api.models.base import table_of, utcnow

# Built once, on the tables (plain SQL, compiled once by SQLAlchemy's cache): every
# authenticated request runs it.
_accounts, _logins = table_of(Account), table_of(Login)
ROLE_WITH_LIVE_LOGIN: Select[Role] = (
    select(_accounts.c.role)
    .join(_logins, _logins.c.account_id == _accounts.c.id)
    .where(
        _accounts.c.id == bindparam("token_account"),
        _logins.c.id == bindparam("token_login"),
        _logins.c.revoked_at.is_(None),
    )
)
# The same, holding the account row (PostgreSQL: FOR NO KEY UPDATE OF accounts; SQLite has one
# writer at a time anyway) until the request's transaction ends. Every request that may write
# takes it first, so an account's writes and its erasure queue on one lock, in one order: an
# erasure waits for the writes in flight, and a write arriving during an erasure waits for it
# and then finds no account (401). Without it, the erasure's cascade and the writes took the
# change counter and the account row in opposite orders and deadlocked.
ROLE_WITH_LIVE_LOGIN_FOR_WRITE = ROLE_WITH_LIVE_LOGIN.with_for_update(of=_accounts, key_share=True)


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_email(self, email: str) -> Account | None:
        return await self.session.scalar(select(Account).where(Account.email == email))

    async def role_with_live_login(
        self, account_id: uuid.UUID, login_id: uuid.UUID, *, for_write: bool = False
    ) -> Role | None:
        """The role of the account behind an access token, if its login has not been revoked:
        one round trip, on every authenticated request. ``for_write`` also holds the account
        row until the transaction ends (see ``ROLE_WITH_LIVE_LOGIN_FOR_WRITE``)."""
        statement = ROLE_WITH_LIVE_LOGIN_FOR_WRITE if for_write else ROLE_WITH_LIVE_LOGIN
        connection = await self.session.connection()
        result = await connection.execute(
            statement, {"token_account": account_id, "token_login": login_id}
        )
        return result.scalar()

    async def update_versioned(
        self, account: Account, expected_version: int, **values: object
    ) -> bool:
        """Apply ``values`` only if nobody changed the account since ``expected_version``."""
        now = utcnow()
        result = await self.session.execute(
            update(Account)
            .where(Account.id == account.id, Account.version == expected_version)
            .values(**values, version=expected_version + 1, updated_at=now)
            .returning(Account.version)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return False
        await self.session.refresh(account)
        return True

    async def revoke_logins(
        self, account_id: uuid.UUID, *, keep: uuid.UUID | None, at: datetime
    ) -> None:
        statement = update(Login).where(Login.account_id == account_id, Login.revoked_at.is_(None))
        if keep is not None:
            statement = statement.where(Login.id != keep)
        await self.session.execute(statement.values(revoked_at=at))
