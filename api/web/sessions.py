"""Sessions of the therapist pages: an opaque cookie, a row on the server, an idle limit.

The cookie holds a random token and nothing else; the server keeps only its SHA-256, next to the
login it rides on. Every request that presents it moves ``last_seen_at`` forward; a session left
idle longer than ``web_session_idle_seconds`` is over, and so is one older than twelve hours
however busy. Ending a session revokes its login too, and anything that ends the login (a
password change, erasure of the account) ends the session with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.repository import LoginRepository
from api.models import Account, Login, Role, WebSession
from api.models.base import utcnow
from api.settings import Settings

# However active a session is, it ends this long after sign-in.
LONGEST_SESSION = timedelta(hours=12)
# Longer than any token of ours: a longer cookie or form value is refused unread.
MAX_TOKEN_LENGTH = 128


def cookie_name(settings: Settings, base: str) -> str:
    """``__Host-`` pins a Secure cookie to this host and path "/": no subdomain can set it."""
    return f"__Host-{base}" if settings.secure_cookies else base


def session_cookie(settings: Settings) -> str:
    return cookie_name(settings, "therapist_session")


def csrf_cookie(settings: Settings) -> str:
    return cookie_name(settings, "therapist_csrf")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _hash(token: str) -> bytes:
    # A fast hash is enough: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode()).digest()


def same_token(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the one it must carry."""
    if not sent or not expected or len(sent) > MAX_TOKEN_LENGTH:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


@dataclass(frozen=True)
class SignedIn:
    """A live web session and the therapist it belongs to."""

    web_session: WebSession
    therapist: Account

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token


async def start(session: AsyncSession, settings: Settings, account: Account) -> str:
    """Sign ``account`` in: a new login and a web session on it; returns the cookie's token."""
    now = utcnow()
    await _end_idle(session, settings, account, now)
    login = await LoginRepository(session).start(account.id)
    token = new_token()
    session.add(
        WebSession(
            login_id=login.id,
            token_hash=_hash(token),
            csrf_token=new_token(),
            created_at=now,
            last_seen_at=now,
        )
    )
    await session.flush()
    return token


async def resume(session: AsyncSession, settings: Settings, token: str | None) -> SignedIn | None:
    """The session a cookie names, moved forward, if it is still live; else None (and an idle or
    worn-out session is ended for good)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (
        await session.execute(
            select(WebSession, Account)
            .join(Login, Login.id == WebSession.login_id)
            .join(Account, Account.id == Login.account_id)
            .where(WebSession.token_hash == _hash(token), Login.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    web_session, account = row
    now = utcnow()
    if _over(web_session, settings, now) or account.role is not Role.THERAPIST:
        await end(session, web_session, now)
        return None
    await session.execute(
        update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now)
    )
    return SignedIn(web_session=web_session, therapist=account)


async def end(session: AsyncSession, web_session: WebSession, now: datetime) -> None:
    """Sign out: the session row goes, and its login is revoked."""
    await LoginRepository(session).revoke(web_session.login_id, now)
    await session.execute(delete(WebSession).where(WebSession.id == web_session.id))


def _over(web_session: WebSession, settings: Settings, now: datetime) -> bool:
    idle = timedelta(seconds=settings.web_session_idle_seconds)
    return web_session.last_seen_at <= now - idle or web_session.created_at <= now - LONGEST_SESSION


async def _end_idle(
    session: AsyncSession, settings: Settings, account: Account, now: datetime
) -> None:
    """Clear away the account's sessions that ran out unseen (a browser closed without signing
    out), so their rows do not pile up."""
    rows = (
        await session.scalars(
            select(WebSession)
            .join(Login, Login.id == WebSession.login_id)
            .where(Login.account_id == account.id)
        )
    ).all()
    for web_session in rows:
        if _over(web_session, settings, now):
            await end(session, web_session, now)
