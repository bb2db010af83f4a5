"""One settings class for the whole service, read from the environment (prefix ``JOURNAL_``)."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNAL_", env_file=None, extra="ignore")

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

    # Browser origins allowed to call the API (exact, e.g. "https://app.example.org"); none by
    # default: the mobile app and servers need no CORS.
    cors_origins: list[str] = []

    # The therapist web view (/therapist/). Its session cookie is Secure (sent over HTTPS only)
    # when this is true; unset, it is true in production and false in development and test,
    # which serve plain http on loopback.
    web_cookie_secure: bool | None = None
    # A web session left idle this long is over; each request starts the wait again.
    web_session_idle_seconds: int = Field(default=900, ge=1, le=900)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

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
    def concurrency(self) -> int:
        """Requests served at once by one process."""
        return self.max_concurrent_requests or self.db_pool_size

    @property
    def per_caller(self) -> int:
        return self.max_requests_per_caller or max(1, self.concurrency // 2)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
