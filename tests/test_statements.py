"""The hot statements (the caller's login, the change counter, an entry's INSERT, a page, the
live-grant check, the audit and idempotency records) run on the request's own connection, in
its transaction, through SQLAlchemy's public API, and are bounded by the statement timeout.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Float, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.database import create_engine
from api.errors import DATABASE_UNAVAILABLE
from api.journal.repository import EntryRepository, PageRequest, Scope
from api.models import Checkin
from api.models.base import utcnow
from tests.conftest import make_settings
from tests.support.people import Person


async def test_a_write_and_its_change_number_are_undone_with_the_transaction(
    app: FastAPI, patient: Person
) -> None:
    sessions: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    owner = uuid.UUID(patient.id)
    async with sessions() as session:
        entries = EntryRepository(session, Checkin, Scope.own(owner))
        first = await entries.add(uuid.uuid4(), {"mood": 4, "recorded_at": utcnow()}, utcnow())
        assert first is not None
        # The page reads the row this transaction has just written, on the same connection.
        [seen], _ = await entries.page(PageRequest(limit=5))
        assert seen.id == first.id
        await session.rollback()
    async with sessions() as session:
        entries = EntryRepository(session, Checkin, Scope.own(owner))
        assert await entries.page(PageRequest(limit=5)) == ([], False)
        again = await entries.add(uuid.uuid4(), {"mood": 5, "recorded_at": utcnow()}, utcnow())
        await session.rollback()
    assert again is not None
    assert again.seq == first.seq  # the number taken by the undone write was given back


@pytest.mark.postgres_only
async def test_a_statement_past_the_statement_timeout_is_a_database_failure(
    database_url: str, tmp_path: Path
) -> None:
    # The driver's own timeout (JOURNAL_DB_STATEMENT_TIMEOUT_SECONDS) is not a database error:
    # SQLAlchemy lets it through as it is, and the error handlers answer 503 for it.
    settings = make_settings(tmp_path, database_url, db_statement_timeout_seconds=0.2)
    engine = create_engine(settings)
    sleep = select(func.pg_sleep(bindparam("seconds", type_=Float)))
    try:
        async with async_sessionmaker(engine)() as session:
            connection = await session.connection()
            with pytest.raises(DATABASE_UNAVAILABLE):
                await connection.execute(sleep, {"seconds": 5})
    finally:
        await engine.dispose()
