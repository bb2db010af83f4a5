"""The OAuth 2 grants (RFC 6749) and revocation (RFC 7009)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.credentials import check_credentials
from api.auth.passwords import Passwords
from api.auth.repository import LoginRepository
from api.auth.schemas import TokenResponse
from api.auth.tokens import InvalidToken, TokenCodec
from api.errors import OAuthError
from api.journal import idempotency
from api.models import Role
from api.models.base import utcnow
from api.settings import Settings

REFRESH_PREFIX = "rt_"  # makes a leaked refresh token recognisable to secret scanners


def hash_refresh_token(token: str) -> bytes:
    # A fast hash is enough: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode()).digest()


TOKEN_PATH = "/v1/auth/token"  # noqa: S105 - a path


def _answer(tokens: TokenResponse) -> Response:
    return Response(tokens.model_dump_json(), media_type="application/json")


async def _issue(
    session: AsyncSession,
    tokens: TokenCodec,
    settings: Settings,
    account_id: uuid.UUID,
    role: Role,
    login_id: uuid.UUID,
) -> TokenResponse:
    now = utcnow()
    refresh_token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=settings.refresh_token_ttl_days)
    await LoginRepository(session).add_refresh_token(
        login_id, hash_refresh_token(refresh_token), expires_at
    )
    return TokenResponse(
        access_token=tokens.issue_access(account_id, role, login_id, now),
        expires_in=int(tokens.ttl.total_seconds()),
        refresh_token=refresh_token,
    )


async def password_grant(
    session: AsyncSession,
    passwords: Passwords,
    tokens: TokenCodec,
    settings: Settings,
    username: str,
    password: str,
    idempotency_key: str | None = None,
) -> Response:
    account = await check_credentials(session, passwords, username, password)
    if account is None:
        raise OAuthError("invalid_grant", "The email or password is incorrect.")
    if account.deactivated_at is not None:
        raise OAuthError("invalid_grant", "This account has been deactivated by the operator.")

    async def produce() -> Response:
        login = await LoginRepository(session).start(account.id)
        return _answer(await _issue(session, tokens, settings, account.id, account.role, login.id))

    # The password is checked before any replay, and is no part of the fingerprint (a hash of
    # it would be a password hash stored without salt).
    fingerprint = idempotency.fingerprint("POST", TOKEN_PATH, f"password {account.id}")
    return await idempotency.once(session, account.id, idempotency_key, fingerprint, produce)


async def refresh_grant(
    session: AsyncSession,
    tokens: TokenCodec,
    settings: Settings,
    refresh_token: str,
    idempotency_key: str | None = None,
) -> Response:
    """Exchange a refresh token for a new pair, once. Resent with the same Idempotency-Key and
    the same refresh token (the first answer was lost), the same pair comes back; the used
    token without that key, or with another, is reuse and ends the login."""
    logins = LoginRepository(session)
    token_hash = hash_refresh_token(refresh_token)
    record = await logins.find_refresh(token_hash)
    now = utcnow()
    if record is None or record.login_revoked or record.expires_at <= now:
        raise OAuthError("invalid_grant", "The refresh token is invalid, expired or revoked.")
    fingerprint = idempotency.fingerprint("POST", TOKEN_PATH, f"refresh_token {token_hash.hex()}")
    if record.rotated or not await logins.mark_rotated(token_hash, now):
        if idempotency_key is not None:
            replay = await idempotency.replayed(
                session, record.account_id, idempotency_key, fingerprint
            )
            if replay is not None:
                return replay
        # A used refresh token came back: it was stolen, or the client that had it was. End the
        # whole login, and keep that even though this request fails.
        await logins.revoke(record.login_id, now)
        await session.commit()
        raise OAuthError(
            "invalid_grant", "The refresh token was already used; the login has been ended."
        )

    async def produce() -> Response:
        return _answer(
            await _issue(session, tokens, settings, record.account_id, record.role, record.login_id)
        )

    return await idempotency.once(session, record.account_id, idempotency_key, fingerprint, produce)


async def revoke(session: AsyncSession, tokens: TokenCodec, token: str) -> None:
    """End the login a token belongs to, or a read token alone; unknown and invalid tokens are
    ignored, as RFC 7009 asks."""
    logins = LoginRepository(session)
    login_id: uuid.UUID | None = None
    if token.startswith(REFRESH_PREFIX):
        record = await logins.find_refresh(hash_refresh_token(token))
        login_id = record.login_id if record else None
    else:
        try:
            login_id = tokens.verify_access(token).login_id
        except InvalidToken:
            login_id = None
        if login_id is None:
            try:
                read = tokens.verify_read(token)
            except InvalidToken:
                return
            # A read token ends by itself: the therapist's login, and its other tokens, go on.
            await logins.revoke_read_token(read.jti, read.expires_at, utcnow())
            return
    if login_id is not None:
        await logins.revoke(login_id, utcnow())
