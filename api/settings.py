"""One settings class for the whole service, read from the environment (prefix ``JOURNAL_``)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from limits import parse
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

Environment = Literal["development", "test", "production"]
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class CrisisResourceSetting(BaseModel):
    """One entry of ``JOURNAL_CRISIS_RESOURCES``: a name, and at least one way to reach it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=1, max_length=100)
    text: str | None = Field(default=None, min_length=1, max_length=100)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)

    @model_validator(mode="after")
    def _reachable(self) -> CrisisResourceSetting:
        if self.phone is None and self.text is None and self.url is None:
            raise ValueError(f"{self.name!r} needs a phone, a text number or a url")
        return self


def _setting_name(info: ValidationInfo) -> str:
    return f"JOURNAL_{(info.field_name or '').upper()}"


class Settings(BaseSettings):
    # Inputs stay out of error messages: some settings are secrets.
    model_config = SettingsConfigDict(
        env_prefix="JOURNAL_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = "development"
    data_dir: Path = Path("data")
    # DATABASE_URL without the prefix too: it is the name every platform and tool already uses.
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("JOURNAL_DATABASE_URL", "DATABASE_URL"),
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # Requests served at once by one process; the others wait their turn, each at most the pool
    # timeout, then 503. Unset: the pool size (each request holds at most one connection).
    max_concurrent_requests: int | None = Field(default=None, ge=1, le=1000)
    # Requests one caller (a bearer token, else an address) may have in flight on one process,
    # waiting or served; more are refused with 429. Unset: half the concurrent requests.
    max_requests_per_caller: int | None = Field(default=None, ge=1, le=1000)
    # Longer than any honest wait for a row lock; a statement past it is answered 503.
    db_statement_timeout_seconds: float = Field(default=30.0, gt=0)
    # A wait for a row another request holds (PostgreSQL's lock_timeout): past it the request
    # is answered 503 saying so, and frees its slot and its connection.
    db_lock_timeout_seconds: float = Field(default=5.0, gt=0)
    # After SIGTERM, /readyz answers 503 at once while the process keeps serving this long (for
    # the load balancer to stop sending), then shuts down gracefully. 0: shut down at once.
    drain_seconds: float = Field(default=0.0, ge=0, le=300)
    # The name of this process in every log line (and metrics): several nodes share one log.
    node_name: str = Field(default_factory=socket.gethostname, max_length=64)
    # Addresses or networks (comma-separated, e.g. "10.0.0.0/8,127.0.0.1") whose
    # X-Forwarded-For and X-Forwarded-Proto are believed: the load balancers. The client
    # address (per-address rate limits) is taken from them only. "*" trusts everyone: never in
    # front of the internet.
    trusted_proxies: str = "127.0.0.1"
    # GET /metrics (Prometheus text format): off unless set; when off, the path is unknown (404).
    metrics_enabled: bool = False
    # Addresses or networks (comma-separated) allowed to read /metrics; everyone else gets 403.
    # The address is the client's as the trusted proxies forwarded it.
    metrics_allow: str = "127.0.0.1/32,::1"

    jwt_issuer: str = "kap-journal"
    jwt_audience: str = "kap-journal-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    # A JSON array of PEM-encoded Ed25519 private keys. The first one signs; all of them verify
    # and are published in the JWKS until removed (retired). Unset: keys live in data_dir/keys.
    signing_keys: SecretStr | None = None
    # A JSON array of base64 AES-256 keys (32 bytes each), newest first: the first encrypts, all
    # decrypt. Unset: keys live in data_dir/keys/encryption.
    encryption_keys: SecretStr | None = None

    # Argon2id cost; the defaults follow OWASP's recommendation (19 MiB, 2 passes).
    password_hash_memory_kib: int = Field(default=19456, ge=1024)
    password_hash_time_cost: int = Field(default=2, ge=1)

    # Shown with every safety flag. A JSON array of {name, phone, text, url}; set it for the
    # countries you serve.
    crisis_resources: list[dict[str, str]] = [
        {
            "name": "988 Suicide & Crisis Lifeline (US)",
            "phone": "988",
            "text": "988",
            "url": "https://988lifeline.org",
        },
        {"name": "Find a helpline in your country", "url": "https://findahelpline.com"},
        {"name": "Emergency services", "phone": "911 (US) / 112 (EU) / 999 (UK)"},
    ]

    # Rate limits, in the `limits` notation ("10/minute"). Counters live in this process unless
    # REDIS_URL is set, and then in Redis, shared by every process.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("JOURNAL_REDIS_URL", "REDIS_URL")
    )
    # Bound on connecting to Redis and on each answer: past it the limiter lets the request
    # through (as for a refused Redis) and readiness reports "degraded".
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    rate_limit_key_prefix: str = "journal"
    rate_limit_per_token: str = "600/minute"  # noqa: S105 - a rate, not a secret
    rate_limit_per_address: str = "120/minute"
    rate_limit_token_per_address: str = "30/minute"  # noqa: S105
    rate_limit_token_per_account: str = "10/minute"  # noqa: S105
    # Pairing codes looked up (previews and grants by code), per patient and per address: a code
    # has 59 bits and lives 10 minutes, so guessing one is hopeless well within these.
    rate_limit_pairing_per_account: str = "10/hour"
    rate_limit_pairing_per_address: str = "30/hour"

    # Browser origins allowed to call the API (exact, e.g. "https://app.example.org"); none by
    # default: the mobile app and servers need no CORS.
    cors_origins: list[str] = []

    # The therapist web view (/therapist/). Its session cookie is Secure (sent over HTTPS only)
    # when this is true; unset, it is true in production and false in development and test,
    # which serve plain http on loopback.
    web_cookie_secure: bool | None = None
    # A web session left idle this long is over; each request starts the wait again.
    web_session_idle_seconds: int = Field(default=900, ge=1, le=900)

    # Therapist invitations are mailed through this server when set: smtp://user:pass@host:port
    # (STARTTLS when the server offers it) or smtps://... (TLS from the start). Unset: the
    # operator hands the code on from the CLI's output. Only invitations are ever mailed.
    smtp_url: SecretStr | None = None
    smtp_from: str = "KAP journal <no-reply@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # How long the first answer to an Idempotency-Key is kept for replays: a phone offline for
    # longer sends its write as new. Swept every idempotency_sweep_seconds, at most
    # idempotency_sweep_batch records per sweep.
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    idempotency_sweep_seconds: float = Field(default=60.0, gt=0, le=3600)
    idempotency_sweep_batch: int = Field(default=1000, ge=1, le=100_000)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request body must arrive within this long after its headers, else 408 and the
    # connection is closed: slow senders must not hold anything of the service.
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    # Every setting is checked here, as the process starts, with a message naming it: a bad value
    # must stop the start, not turn into a 500 the first time a request needs it.

    @field_validator("crisis_resources")
    @classmethod
    def _crisis_resources(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        checked: list[dict[str, str]] = []
        for index, entry in enumerate(value):
            try:
                resource = CrisisResourceSetting.model_validate(entry)
            except ValidationError as exc:
                reasons = "; ".join(
                    f"{'.'.join(map(str, error['loc'])) or 'entry'}: {error['msg']}"
                    for error in exc.errors()
                )
                raise ValueError(f"JOURNAL_CRISIS_RESOURCES[{index}]: {reasons}") from None
            checked.append(resource.model_dump(exclude_none=True))
        return checked

    @field_validator(
        "rate_limit_per_token",
        "rate_limit_per_address",
        "rate_limit_token_per_address",
        "rate_limit_token_per_account",
    )
    @classmethod
    def _rate(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"{_setting_name(info)} must be a rate such as '10/minute', not {value!r}"
            ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value  # filled in below from the data folder
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            raise ValueError("DATABASE_URL is not a database URL") from None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(
                f"DATABASE_URL must start with {' or '.join(DATABASE_DRIVERS)}://, not {driver}://"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(REDIS_SCHEMES):
            raise ValueError(f"REDIS_URL must start with {', '.join(REDIS_SCHEMES)}")
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _metrics_allow(cls, value: str) -> str:
        for entry in value.split(","):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    "JOURNAL_METRICS_ALLOW holds addresses or networks, comma-separated "
                    f"(e.g. '127.0.0.1/32,10.0.0.0/8'), not {entry.strip()!r}"
                ) from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not ORIGIN.fullmatch(origin):
                raise ValueError(
                    "JOURNAL_CORS_ORIGINS holds origins such as 'https://app.example.org' "
                    f"(scheme, host, optional port; no path), not {origin!r}"
                )
        return value

    @field_validator("signing_keys")
    @classmethod
    def _signing_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        problem = "JOURNAL_SIGNING_KEYS must be a JSON array of PEM Ed25519 private keys"
        pems = _json_strings(value, problem)
        for pem in pems:
            try:
                key = serialization.load_pem_private_key(pem.encode(), password=None)
            except (ValueError, TypeError):
                raise ValueError(f"{problem}: one of them is not a PEM private key") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{problem}: one of them is not an Ed25519 key")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _encryption_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        problem = "JOURNAL_ENCRYPTION_KEYS must be a JSON array of base64 AES-256 keys (32 bytes)"
        for text in _json_strings(value, problem):
            try:
                key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
            except (ValueError, binascii.Error):
                raise ValueError(f"{problem}: one of them is not base64") from None
            if len(key) != 32:
                raise ValueError(f"{problem}: one of them is {len(key)} bytes long")
        return value

    @model_validator(mode="after")
    def _defaults_and_production_rules(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'journal.db'}"
        # Keys generated into the data folder are development secrets: production brings its own.
        if self.environment == "production":
            missing = [
                name
                for name, value in (
                    ("JOURNAL_SIGNING_KEYS", self.signing_keys),
                    ("JOURNAL_ENCRYPTION_KEYS", self.encryption_keys),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"refusing to start in production without {' and '.join(missing)}")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.web_cookie_secure is None:
            return self.environment == "production"
        return self.web_cookie_secure

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(entry.strip(), strict=False)
            for entry in self.metrics_allow.split(",")
        )

    @property
    def concurrency(self) -> int:
        """Requests served at once by one process."""
        return self.max_concurrent_requests or self.db_pool_size

    @property
    def per_caller(self) -> int:
        return self.max_requests_per_caller or max(1, self.concurrency // 2)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _json_strings(value: SecretStr, problem: str) -> list[str]:
    """A secret holding a non-empty JSON array of strings; the message never repeats the secret."""
    try:
        decoded: Any = json.loads(value.get_secret_value())
    except ValueError:
        raise ValueError(f"{problem}: it is not JSON") from None
    if not isinstance(decoded, list) or not decoded or not all(isinstance(k, str) for k in decoded):
        raise ValueError(problem)
    return decoded


@lru_cache
def get_settings() -> Settings:
    return Settings()
