"""The one credential check, for every door that takes a password: the token endpoint's
password grant and the therapist pages' sign-in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.repository import AccountRepository
from api.accounts.schemas import normalize_email
from api.auth.passwords import Passwords
from api.models import Account


async def check_credentials(
    session: AsyncSession, passwords: Passwords, email: str, password: str
) -> Account | None:
    """The account the email and password open, or None: an unknown (or unreadable) email and a
    wrong password take the same time and give the same answer. A deactivated account is
    returned for the caller to refuse in its own words; its hash is never rewritten. Otherwise a
    hash made with old parameters is replaced by one made with today's."""
    try:
        normalized: str | None = normalize_email(email)
    except ValueError:
        normalized = None
    account = await AccountRepository(session).by_email(normalized) if normalized else None
    matches, new_hash = await passwords.verify(password, account.password_hash if account else None)
    if account is None or not matches:
        return None
    if new_hash is not None and account.deactivated_at is None:
        account.password_hash = new_hash
    return account
