"""Argon2id password hashing, run off the event loop, with even timing for unknown emails."""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from starlette.concurrency import run_in_threadpool

from api.settings import Settings


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    memory_cost=settings.password_hash_memory_kib,
                    time_cost=settings.password_hash_time_cost,
                ),
            )
        )
        # Verified against when the email is unknown, so that answer takes as long as a wrong
        # password does and timing does not tell which emails have accounts.
        self._dummy_hash = self._hash.hash("dummy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await run_in_threadpool(self._hash.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """Check a password; returns (matches, a new hash when the stored one uses old parameters)."""
        if stored_hash is None:
            await run_in_threadpool(self._hash.verify, password, self._dummy_hash)
            return False, None
        return await run_in_threadpool(self._hash.verify_and_update, password, stored_hash)
