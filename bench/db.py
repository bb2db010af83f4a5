"""The bench's own PostgreSQL database: created fresh, migrated, seeded, dropped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

SERVER = "postgres@127.0.0.1:5432"
MAINTENANCE_DSN = f"postgresql://{SERVER}/postgres"


def dsn(database: str) -> str:
    """For asyncpg (and the baseline)."""
    return f"postgresql://{SERVER}/{database}"


def sqlalchemy_url(database: str) -> str:
    """For the service and alembic."""
    return f"postgresql+asyncpg://{SERVER}/{database}"


async def _maintenance(statement: str) -> None:
    connection = await asyncpg.connect(MAINTENANCE_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create(database: str) -> None:
    asyncio.run(_maintenance(f'CREATE DATABASE "{database}"'))


def drop(database: str) -> None:
    # FORCE (PostgreSQL 13+) ends any connection a crashed server left behind.
    asyncio.run(_maintenance(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def migrate(database: str, cwd: Path) -> None:
    subprocess.run(  # noqa: S603 - our own venv's alembic, fixed arguments
        [str(cwd / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": sqlalchemy_url(database)},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def fresh_database(cwd: Path) -> Iterator[str]:
    """A new, migrated ``journal_bench_<random>`` database, dropped on the way out."""
    database = f"journal_bench_{secrets.token_hex(4)}"
    create(database)
    try:
        migrate(database, cwd)
        yield database
    finally:
        drop(database)


async def _seed_history(database: str, owner_id: uuid.UUID, count: int) -> None:
    """``count`` check-ins written straight into the table (as tests/test_pagination.py does),
    over the last 400 days with many identical times, and the owner's change counter after them.
    The encrypted ``note`` stays NULL."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    start = now - timedelta(days=400)
    records = [
        (
            uuid.uuid4(),
            owner_id,
            False,
            1,
            n + 1,
            start + timedelta(minutes=rng.randrange(0, 400 * 24 * 60, 7)),
            rng.randrange(11),
            True,
            now,
            now,
        )
        for n in range(count)
    ]
    connection = await asyncpg.connect(dsn(database))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "checkins",
                records=records,
                columns=[
                    "id",
                    "owner_id",
                    "private",
                    "version",
                    "seq",
                    "recorded_at",
                    "mood",
                    "backfilled",
                    "created_at",
                    "updated_at",
                ],
            )
            await connection.execute(
                "INSERT INTO change_counters (owner_id, last_seq) VALUES ($1, $2)",
                owner_id,
                count,
            )
        # Statistics as a database in service would have them.
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def seed_history(database: str, owner_id: str, count: int) -> None:
    asyncio.run(_seed_history(database, uuid.UUID(owner_id), count))


async def _scalar(database: str, query: str) -> int:
    connection = await asyncpg.connect(dsn(database))
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def count_checkins(database: str) -> int:
    return asyncio.run(_scalar(database, "SELECT count(*) FROM checkins"))


def count_audit_records(database: str) -> int:
    return asyncio.run(_scalar(database, "SELECT count(*) FROM audit_records"))
