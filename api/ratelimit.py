"""Rate limits (the `limits` package): counters in this process by default, in Redis when
REDIS_URL is set so that every process behind a load balancer counts together.

Three kinds. Every password check (sign-in on the token endpoint or the web pages, and the
current password that `PATCH /v1/me` and `DELETE /v1/me` ask for) spends from a budget per client
address and one per account, the account named by the normalised email the lookup itself uses,
so no re-spelling of an address gets a budget of its own. Every other request spends from a
budget per login (or per grant, for a therapist's read token) when it carries a token that
verifies, and from its address's budget otherwise: a made-up `Authorization` header buys nothing.
Pairing-code lookups spend from a budget per address and one per patient (code guessing).

Keys hold HMAC-SHA256 digests under a server secret (derived from the newest encryption key),
never a token or an email, and nothing anyone could link to an email without that secret. If
Redis cannot be reached, or does not answer within JOURNAL_REDIS_TIMEOUT_SECONDS, the limiter lets
requests through, says so in the log (once a minute at most) and readiness reports "degraded": an
outage of the limiter must not become an outage of the journal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from dataclasses import dataclass

import coredis
import structlog
from coredis.retry import NoRetryPolicy
from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.types import Scope

from api.accounts.schemas import normalize_email
from api.auth.tokens import InvalidToken, TokenCodec
from api.errors import TooManyRequests
from api.settings import Settings

logger = structlog.get_logger("api.ratelimit")
LOG_INTERVAL = 60.0  # seconds between two log lines about the same outage
# After a failure, Redis is left alone this long: under an outage only one request in this
# interval pays the timeout, the others pass at once.
RETRY_AFTER_FAILURE = 1.0
UNLIMITED_PATHS = ("/healthz", "/readyz", "/.well-known/", "/docs", "/openapi.json", "/redoc")
# Limited in its route, per address and per account, instead of by the budget below.
OWN_LIMITS = ("/v1/auth/token",)
# The paths no request spends from the per-request budget on (``spend_request``).
NO_REQUEST_BUDGET = UNLIMITED_PATHS + OWN_LIMITS


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers()`` as an ASGI answer carries them (names in lower case, as Starlette sends
        every header), for the middleware to append as they are."""
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_after).encode()),
        ]


class RateLimiter:
    def __init__(self, settings: Settings, key_secret: bytes) -> None:
        prefix = settings.rate_limit_key_prefix
        self._key_secret = key_secret
        # Our own pool, so that shutting down closes its connections.
        # Every connect and every answer bounded: a Redis that accepts and never answers must
        # cost a request a fraction of a second, not hang it.
        self._pool = (
            coredis.ConnectionPool.from_url(
                settings.redis_url,
                connect_timeout=settings.redis_timeout_seconds,
                stream_timeout=settings.redis_timeout_seconds,
            )
            if settings.redis_url
            else None
        )
        self._timeout = settings.redis_timeout_seconds
        self._failed_at: float | None = None  # monotonic time of the last failure
        self.failures = 0  # calls to Redis that failed or timed out, for the metrics
        self._logged_at: float | None = None
        if self._pool is not None:
            self._storage = storage_from_string(
                f"async+{settings.redis_url}",
                key_prefix=prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed through to coredis
                # One try: the request that meets a silent Redis waits one timeout, not four.
                retry_policy=NoRetryPolicy(),  # type: ignore[arg-type]  # passed through too
            )
        else:
            self._storage = storage_from_string("async+memory://", key_prefix=prefix)
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)
        self.per_token = parse(settings.rate_limit_per_token)
        self.per_address = parse(settings.rate_limit_per_address)
        self.token_per_address = parse(settings.rate_limit_token_per_address)
        self.token_per_account = parse(settings.rate_limit_token_per_account)
        self.pairing_per_account = parse(settings.rate_limit_pairing_per_account)
        self.pairing_per_address = parse(settings.rate_limit_pairing_per_address)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()

    def digest(self, key: str) -> str:
        """What a counter's key holds instead of ``key``: linkable only with the server's secret."""
        return hmac.new(self._key_secret, key.encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def degraded(self) -> bool:
        """Whether the store failed within the last interval (limits not enforced)."""
        return self._failed_at is not None and time.monotonic() - self._failed_at < LOG_INTERVAL

    async def hit(self, item: RateLimitItem, kind: str, key: str) -> Verdict:
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE:
            # Redis failed a moment ago: let the request through without waiting on it again.
            return Verdict(True, item.amount, item.amount, 0)
        try:
            # Bounded as a whole too: a pool waiting for a connection has no timeout of its own.
            async with asyncio.timeout(self._timeout * 4):
                digest = self.digest(key)
                allowed = await self._strategy.hit(item, kind, digest)
                stats = await self._strategy.get_window_stats(item, kind, digest)
        except Exception as exc:
            self._failed(exc)
            return Verdict(True, item.amount, item.amount, 0)
        self._failed_at = None
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, stats.remaining, reset_after)

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._failed_at = now
        self.failures += 1
        if self._logged_at is None or now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            # Once per interval: a Redis outage under load would otherwise log every request.
            logger.warning(
                "rate limiter unavailable: requests are let through",
                error_type=type(exc).__name__,
                again_in_seconds=LOG_INTERVAL,
            )

    async def check_password_attempt(self, address: str, username: str | None) -> None:
        """Raise 429 when this address or this account has tried passwords too often.

        Called before every password check, wherever it happens. The account is keyed on the
        email as the account lookup normalises it, so every spelling that reaches an account
        spends from that account's one budget.
        """
        checks = [(self.token_per_address, "token-address", address)]
        if username:
            checks.append((self.token_per_account, "token-account", account_key(username)))
        for item, kind, key in checks:
            verdict = await self.hit(item, kind, key)
            if not verdict.allowed:
                raise too_many(verdict)

    async def check_pairing_lookup(self, address: str, account_id: str) -> None:
        """Raise 429 when this address or this patient has tried pairing codes too often: every
        preview and every grant by code spends one, found or not, so guessing is slow."""
        checks = [
            (self.pairing_per_address, "pairing-address", address),
            (self.pairing_per_account, "pairing-account", account_id),
        ]
        for item, kind, key in checks:
            verdict = await self.hit(item, kind, key)
            if not verdict.allowed:
                raise too_many(verdict)


def account_key(username: str) -> str:
    """The identity a sign-in's username names: the normalised email, as the lookup uses it."""
    try:
        return normalize_email(username)
    except ValueError:
        return username.strip().lower()  # names no account; still counted, under itself


def caller_key(scope: Scope) -> tuple[str, str] | None:
    """The budget a request's bearer token spends from, if the token verifies: its login, or
    the grant of a read token. None for no token, or one that does not verify."""
    authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    tokens: TokenCodec = scope["app"].state.tokens
    # Verified once per token text and remembered (TokenCodec): the route's own check is free.
    try:
        return ("login", str(tokens.verify_access(token).login_id))
    except InvalidToken:
        pass
    try:
        return ("grant", str(tokens.verify_read(token).grant_id))
    except InvalidToken:
        return None


def too_many(verdict: Verdict) -> TooManyRequests:
    retry_after = max(1, verdict.reset_after)
    return TooManyRequests(
        f"Too many requests: try again in {retry_after} seconds.",
        headers={**verdict.headers(), "Retry-After": str(retry_after)},
        cause="rate-limit",
    )


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def spend_request(scope: Scope) -> Verdict | None:
    """Spend one request from the caller's budget: its login's or grant's when it carries a token
    that verifies, its address's otherwise. None on the paths no such budget covers.

    The caller of this (``api.middleware.Gate``) answers 429 when the verdict is not allowed,
    and reports the budget on every other answer.
    """
    if scope["path"].startswith(NO_REQUEST_BUDGET):
        return None
    limiter: RateLimiter = scope["app"].state.limiter
    caller = caller_key(scope)
    if caller is not None:
        kind, key = caller
        return await limiter.hit(limiter.per_token, kind, key)
    return await limiter.hit(limiter.per_address, "address", client_address(scope))
