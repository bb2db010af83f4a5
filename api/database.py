"""The async engine, and the request-scoped session that is each request's unit of work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.crypto import FieldCipher
from api.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            # The folder holds journals (and, by default, keys): its owner alone may enter it.
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        # A database that stops answering must not hang requests: connecting is bounded like
        # waiting for the pool, and every statement by the statement timeout.
        connect_args={
            "timeout": settings.db_pool_timeout_seconds,
            "command_timeout": settings.db_statement_timeout_seconds,
            # A row held by another transaction is waited for this long at most, then the
            # statement fails (55P03) and the request is answered 503 saying so.
            "server_settings": {
                "lock_timeout": f"{round(settings.db_lock_timeout_seconds * 1000)}ms"
            },
        },
    )
    # Not the pool's pre-ping, which costs a round trip on every checkout: only a connection
    # that sat idle, or that was in use when another one was found lost, is pinged before use
    # (see Liveness).
    liveness = Liveness(engine.dialect)
    event.listen(engine.sync_engine.pool, "checkin", liveness.checkin)
    event.listen(engine.sync_engine.pool, "checkout", liveness.checkout)
    event.listen(engine.sync_engine.pool, "invalidate", liveness.lost)
    return engine


HEALTH_TIMEOUT_SECONDS = 2.0


def create_health_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """Readiness's own connection: a check never waits behind requests for the request pool,
    so a busy node is not reported dead. SQLite has no pool to wait for: the same engine."""
    if settings.is_sqlite:
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=HEALTH_TIMEOUT_SECONDS,
        pool_pre_ping=True,  # one check every few seconds: a round trip is nothing here
        connect_args={"timeout": HEALTH_TIMEOUT_SECONDS, "command_timeout": HEALTH_TIMEOUT_SECONDS},
    )


# A connection in steady use proves itself with every statement; one idle for longer than this
# may have been cut off (database restarted, network dropped, database silent) and is pinged.
IDLE_PING_SECONDS = 1.0


class Liveness:
    """Which pooled connections to ping before handing them out.

    When the database drops one connection (a failover, a restart, ``pg_terminate_backend``) it
    has usually dropped them all. The first one found lost is invalidated (by SQLAlchemy); from
    then on every connection last handed out before that moment is pinged at its next checkout,
    and replaced by the pool when the ping fails, instead of failing one request each. A
    connection idle for a second is pinged too.
    """

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self.lost_at = 0.0

    def lost(self, _dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        self.lost_at = time.monotonic()

    def checkin(self, _dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        now = time.monotonic()
        idle_since = record.info.get("idle_since")
        out_since = record.info.get("out_since")
        if (idle_since is not None and now - idle_since >= IDLE_PING_SECONDS) or (
            out_since is not None and out_since <= self.lost_at
        ):
            try:
                self.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                # The pool replaces the connection with a new one (and tries again, up to 3 times).
                raise DisconnectionError from exc
        record.info["out_since"] = now


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins late and breaks SAVEPOINT; we begin ourselves
    # (see _sqlite_begin). Foreign keys are off unless asked on every connection.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: SQLite has one writer, and a transaction that
    # read first and then tried to write could otherwise fail with "database is locked"
    # instead of waiting its turn. The embedded mode trades write concurrency for that.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(
    engine: AsyncEngine, cipher: FieldCipher
) -> async_sessionmaker[AsyncSession]:
    # Every session carries the field cipher, so repositories encrypt and decrypt without
    # anyone passing keys around (api.journal.repository).
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, info={"cipher": cipher}
    )


def cipher_of(session: AsyncSession) -> FieldCipher:
    cipher: FieldCipher = session.info["cipher"]
    return cipher


_READS = frozenset({"GET", "HEAD"})
_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request.

    A write runs in one transaction: committed when the handler returns (before the answer is
    sent), rolled back when it raises. On PostgreSQL a read (GET, HEAD) runs in autocommit, so
    each of its statements commits by itself and a rollback cannot undo them: the audit record
    of a therapist's read stays even when the answer fails after it.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    settings: Settings = request.app.state.settings
    async with sessionmaker() as session:
        if not settings.is_sqlite:
            # Taken now, and bounded (the ping of an idle connection included), so a silent
            # database is a prompt 503 (api.errors), not a hang. A read needs no transaction:
            # each statement sees what was committed before it (READ COMMITTED, as in a transaction), and the BEGIN and COMMIT round trips
            # are saved. A therapist's read writes one audit record, committed by itself before
            # the answer is sent.
            options = _AUTOCOMMIT if request.method in _READS else None
            async with asyncio.timeout(settings.db_pool_timeout_seconds):
                await session.connection(execution_options=options)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": commit before the response is sent, so an acknowledged write is a durable one.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
