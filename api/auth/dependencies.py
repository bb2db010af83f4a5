"""Who is calling: the bearer token checked, its login checked live, the account loaded."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.accounts.repository import AccountRepository
from api.auth.passwords import Passwords
from api.auth.tokens import AccessClaims, InvalidToken, TokenCodec
from api.database import SessionDep
from api.errors import FIRST_CHECK, Forbidden, Unauthorized
from api.journal.repository import Scope
from api.models import Account, Role
from api.ratelimit import RateLimiter, client_address
from api.settings import Settings

bearer = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token",
    # The same endpoint takes the refresh_token grant: access tokens live 15 minutes.
    refreshUrl="/v1/auth/token",
    scheme_name="login",
    description="A login access token from `POST /v1/auth/token` (password or refresh_token grant): "
    "a JWT signed with EdDSA and checked as RFC8725 recommends (one algorithm, an explicit "
    "`typ`, issuer, audience and expiry verified).",
    auto_error=False,
)


# async, though they do not await: FastAPI runs a plain function in a worker thread per request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_tokens(request: Request) -> TokenCodec:
    tokens: TokenCodec = request.app.state.tokens
    return tokens


async def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


@dataclass(frozen=True)
class PasswordAttempts:
    """Spends one password check from the caller's address and the account's sign-in budgets
    (429 when either is gone), wherever a password is checked."""

    limiter: RateLimiter
    address: str

    async def spend(self, email: str) -> None:
        await self.limiter.check_password_attempt(self.address, email)


async def get_password_attempts(request: Request) -> PasswordAttempts:
    return PasswordAttempts(request.app.state.limiter, client_address(request.scope))


SettingsDep = Annotated[Settings, Depends(get_settings)]
TokensDep = Annotated[TokenCodec, Depends(get_tokens)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
PasswordAttemptsDep = Annotated[PasswordAttempts, Depends(get_password_attempts)]


@dataclass(frozen=True)
class Caller:
    """Who is calling, as checked for this request: enough for every route's access rule.
    The few routes about the account itself load it (``account``)."""

    id: uuid.UUID
    role: Role
    login_id: uuid.UUID
    # False: the login is checked live by the request's own write (``deferred_patient``).
    checked: bool = True

    async def account(self, session: AsyncSession) -> Account:
        account = await session.get(Account, self.id)
        if account is None:  # erased since the request began
            raise Unauthorized("The access token has been revoked.")
        return account


# Methods that never write: their requests need not hold the account row.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


REVOKED = "The access token has been revoked."


def _claims(tokens: TokenCodec, token: str | None) -> AccessClaims:
    if token is None:
        raise Unauthorized("Send an access token as `Authorization: Bearer <token>`.", error=None)
    try:
        return tokens.verify_access(token)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or has expired.") from None


async def _live(session: AsyncSession, claims: AccessClaims, *, for_write: bool) -> Caller:
    # Checked on every request, so logout, refresh-token reuse and account deletion take effect
    # at once rather than when the token expires.
    role = await AccountRepository(session).role_with_live_login(
        claims.account_id, claims.login_id, for_write=for_write
    )
    if role is None:
        raise Unauthorized(REVOKED)
    return Caller(id=claims.account_id, role=role, login_id=claims.login_id)


async def current_caller(
    request: Request,
    session: SessionDep,
    tokens: TokensDep,
    token: Annotated[str | None, Depends(bearer)],
) -> Caller:
    claims = _claims(tokens, token)
    return await _live(session, claims, for_write=request.method not in READ_ONLY_METHODS)


CallerDep = Annotated[Caller, Depends(current_caller)]


def only(role: Role, refusal: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency: the caller, when of ``role``; else 403 with ``refusal``, the route's own
    words for why. Every role check of the API is one of these, declared in the route's
    signature, so no endpoint or service checks a role inline."""

    async def caller_of_role(caller: CallerDep) -> Caller:
        if caller.role is not role:
            raise Forbidden(refusal)
        return caller

    return caller_of_role


PATIENTS_ONLY = "Only patients keep a journal; therapists read what patients share."
PatientDep = Annotated[Caller, Depends(only(Role.PATIENT, PATIENTS_ONLY))]
TherapistDep = Annotated[Caller, Depends(only(Role.THERAPIST, "Only therapists have patients."))]


async def own_scope(caller: PatientDep) -> Scope:
    """The patient's own data, everything in it: the scope of every route of a patient's own."""
    return Scope.own(caller.id)


OwnScope = Annotated[Scope, Depends(own_scope)]


async def deferred_patient(
    request: Request,
    session: SessionDep,
    tokens: TokensDep,
    token: Annotated[str | None, Depends(bearer)],
) -> Caller:
    """The caller of a patient's create (``api.journal.creates``) or list (``api.journal.lists``):
    with a patient's token, the login is checked live (for a write, the account row held) by
    the request's own statement, so the token alone is checked here (``checked`` False); any
    other token as every route checks it (401, then 403)."""
    claims = _claims(tokens, token)
    for_write = request.method not in READ_ONLY_METHODS
    if claims.role is Role.PATIENT:
        caller = Caller(
            id=claims.account_id, role=Role.PATIENT, login_id=claims.login_id, checked=False
        )
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker

        async def first_check() -> None:
            # A body refused by validation is answered after this request's session is gone.
            async with sessionmaker() as own:
                await require_live(own, caller, for_write=for_write)

        setattr(request.state, FIRST_CHECK, first_check)
        return caller
    caller = await _live(session, claims, for_write=for_write)
    if caller.role is not Role.PATIENT:
        raise Forbidden(PATIENTS_ONLY)
    return caller


async def require_live(session: AsyncSession, caller: Caller, *, for_write: bool = True) -> None:
    """The check ``current_caller`` makes, for a ``deferred_patient`` whose login its write
    does not check (a create with more to it than the row), or that is about to be refused
    before its write: a dead login's 401 (then a non-patient's 403) comes first, as on every
    route."""
    if caller.checked:
        return
    checked = await AccountRepository(session).role_with_live_login(
        caller.id, caller.login_id, for_write=for_write
    )
    if checked is None:
        raise Unauthorized(REVOKED)
    if checked is not Role.PATIENT:
        raise Forbidden(PATIENTS_ONLY)


DeferredPatientDep = Annotated[Caller, Depends(deferred_patient)]
