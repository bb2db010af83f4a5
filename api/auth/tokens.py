"""Access tokens: EdDSA-signed JWTs, at most 15 minutes, every claim required and checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from api.auth.keys import ALGORITHM, KeyRing
from api.models import Role
from api.models.base import utcnow
from api.settings import Settings

HEADER_TYPE = "at+jwt"  # RFC 9068
CLOCK_SKEW = timedelta(seconds=5)
COMMON_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "typ", "role"]
# Tokens already verified, with their claims: a client sends the same token for minutes, and
# verifying an Ed25519 signature again each time is the costliest part of a request's auth.
VERIFIED_CACHE_SIZE = 10_000


class TokenType(StrEnum):
    """The ``typ`` claim: a token is accepted only where its type is expected."""

    ACCESS = "access"
    PATIENT_READ = "patient_read"


# What each type must carry beyond the common claims.
# A read token's ``sid`` is the therapist's login that minted it: ending that login ends it.
TYPE_CLAIMS = {
    TokenType.ACCESS: ["sid"],
    TokenType.PATIENT_READ: ["sid", "patient", "grant", "scope"],
}


class InvalidToken(Exception):
    """Why a token was refused, for the operator; the client only learns that it was."""


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    role: Role
    login_id: uuid.UUID


@dataclass(frozen=True)
class ReadClaims:
    """A therapist's patient-scoped read token: one patient, one grant, some kinds of data,
    bound to the therapist's login (``login_id``)."""

    therapist_id: uuid.UUID
    login_id: uuid.UUID
    patient_id: uuid.UUID
    grant_id: uuid.UUID
    scopes: frozenset[str]
    jti: str
    expires_at: datetime


class TokenCodec:
    def __init__(self, ring: KeyRing, settings: Settings) -> None:
        self._ring = ring
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self._verified: dict[str, tuple[float, AccessClaims | ReadClaims]] = {}

    def issue_access(
        self, account_id: uuid.UUID, role: Role, login_id: uuid.UUID, now: datetime
    ) -> str:
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(account_id),
            "iat": int(now.timestamp()),
            "exp": int((now + self.ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "typ": TokenType.ACCESS.value,
            "role": role.value,
            "sid": str(login_id),
        }
        return self._sign(claims)

    def issue_read(
        self,
        therapist_id: uuid.UUID,
        login_id: uuid.UUID,
        patient_id: uuid.UUID,
        grant_id: uuid.UUID,
        scopes: list[str],
        now: datetime,
        expires_at: datetime,
    ) -> str:
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(therapist_id),
            "iat": int(now.timestamp()),
            "exp": int(min(now + self.ttl, expires_at).timestamp()),
            "jti": uuid.uuid4().hex,
            "typ": TokenType.PATIENT_READ.value,
            "role": Role.THERAPIST.value,
            "sid": str(login_id),
            "patient": str(patient_id),
            "grant": str(grant_id),
            "scope": " ".join(scopes),
        }
        return self._sign(claims)

    def jwks(self) -> dict[str, Any]:
        return self._ring.jwks()

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self._ring.signing
        return jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": HEADER_TYPE},
        )

    def _verify(self, token: str, expected: TokenType) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("malformed") from exc
        # Checked before any key is touched: the algorithm is pinned, the kid must name a key we
        # hold (it is a dictionary key, never a path or a query), and we understand no
        # critical extension, so any "crit" is refused (RFC 7515 section 4.1.11).
        if header.get("alg") != ALGORITHM or header.get("typ") != HEADER_TYPE or "crit" in header:
            raise InvalidToken("header")
        kid = header.get("kid")
        key = self._ring.verifying_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown kid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW,
                # The times are checked below, on the service's clock rather than PyJWT's own
                # reading of it: the same clock as the cache's and the grants' (tests move it).
                options={
                    "require": COMMON_CLAIMS + TYPE_CLAIMS[expected],
                    "strict_aud": True,
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not all(type(value) is int for value in (issued_at, expires_at)):
            raise InvalidToken("iat or exp not an integer")
        now, skew = utcnow().timestamp(), CLOCK_SKEW.total_seconds()
        if issued_at > now + skew:
            raise InvalidToken("ImmatureSignatureError")
        if expires_at <= now - skew:
            raise InvalidToken("ExpiredSignatureError")
        if claims["typ"] != expected.value:
            raise InvalidToken("wrong token type")
        return claims

    def _remembered(self, token: str) -> AccessClaims | ReadClaims | None:
        """The claims of a token verified before and not expired since, else None.

        Only a token that passed every check is remembered, keyed by its exact text, so a hit
        means the same signed bytes; expiry is checked again on every hit, without leeway.
        The key ring does not change while the process runs, and revocation is never decided
        here: logins and grants are checked in the database on every request.
        """
        remembered = self._verified.get(token)
        if remembered is None:
            return None
        expires_at, claims = remembered
        if utcnow().timestamp() >= expires_at:
            del self._verified[token]
            return None
        return claims

    def _remember(self, token: str, expires_at: float, claims: AccessClaims | ReadClaims) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # bounded; the next requests verify again
        self._verified[token] = (expires_at, claims)

    def verify_read(self, token: str) -> ReadClaims:
        remembered = self._remembered(token)
        if isinstance(remembered, ReadClaims):
            return remembered
        if remembered is not None:
            # These very bytes verified as a login token: their `typ` is not a read token's.
            raise InvalidToken("type")
        claims = self._verify(token, TokenType.PATIENT_READ)
        try:
            if (
                claims["role"] != Role.THERAPIST.value
                or not isinstance(claims["scope"], str)
                or not isinstance(claims["jti"], str)
            ):
                raise ValueError("claims")
            read = ReadClaims(
                therapist_id=uuid.UUID(claims["sub"]),
                login_id=uuid.UUID(claims["sid"]),
                patient_id=uuid.UUID(claims["patient"]),
                grant_id=uuid.UUID(claims["grant"]),
                scopes=frozenset(claims["scope"].split()),
                jti=claims["jti"],
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise InvalidToken("claim values") from exc
        self._remember(token, claims["exp"], read)
        return read

    def verify_access(self, token: str) -> AccessClaims:
        remembered = self._remembered(token)
        if isinstance(remembered, AccessClaims):
            return remembered
        if remembered is not None:
            # These very bytes verified as a read token (the rate limiter asks this first of
            # every bearer token): their `typ` is not a login token's, and the signature need
            # not be checked again to say so.
            raise InvalidToken("type")
        claims = self._verify(token, TokenType.ACCESS)
        try:
            access = AccessClaims(
                account_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                login_id=uuid.UUID(claims["sid"]),
            )
        except (ValueError, TypeError) as exc:
            raise InvalidToken("claim values") from exc
        self._remember(token, claims["exp"], access)
        return access
