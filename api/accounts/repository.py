from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import Account, Login, Role
from api.models.base import table_of, utcnow
from api.statements import Statement

# Built once, on the tables (plain SQL): every authenticated request runs it.
_accounts, _logins = table_of(Account), table_of(Login)
_ROLE_WITH_LIVE_LOGIN = Statement(
    select(_accounts.c.role)
    .join(_logins, _logins.c.account_id == _accounts.c.id)
    .where(
        _accounts.c.id == bindparam("token_account"),
        _logins.c.id == bindparam("token_login"),
        _logins.c.revoked_at.is_(None),
    )
)


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_email(self, email: str) -> Account | None:
        return await self.session.scalar(select(Account).where(Account.email == email))

    async def role_with_live_login(self, account_id: uuid.UUID, login_id: uuid.UUID) -> Role | None:
        """The role of the account behind an access token, if its login has not been revoked:
        one round trip, on every authenticated request."""
        role: Role | None = await _ROLE_WITH_LIVE_LOGIN.scalar(
            self.session, {"token_account": account_id, "token_login": login_id}
        )
        return role

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
