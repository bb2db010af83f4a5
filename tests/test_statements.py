"""``api.statements``: a once-built statement gives what SQLAlchemy would give, on either path.

On PostgreSQL ``Statement`` runs on the asyncpg connection itself; on SQLite through the session.
Each test compares it with SQLAlchemy's own execution of the same statement, or checks that it
fails the way SQLAlchemy does, so the two paths cannot drift apart unnoticed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from sqlalchemy import Float, bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from api.database import create_engine
from api.errors import DATABASE_UNAVAILABLE
from api.models import Account, AuditRecord, IdempotencyRecord, Role
from api.models.base import table_of
from api.statements import Statement
from tests.conftest import make_settings
from tests.support.people import Person

ACCOUNTS = table_of(Account)
AUDIT = table_of(AuditRecord)


def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    return maker


async def test_rows_are_what_sqlalchemy_reads_with_its_types(app: FastAPI, patient: Person) -> None:
    statement = select(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("account"))
    async with sessions(app)() as session:
        ours = await Statement(statement).rows(session, {"account": uuid.UUID(patient.id)})
        theirs = [
            dict(row._mapping)
            for row in await session.execute(statement, {"account": uuid.UUID(patient.id)})
        ]
    assert ours == theirs
    [row] = ours
    assert row["role"] is Role.PATIENT  # the enum, not its text
    assert row["created_at"].tzinfo is not None
    assert isinstance(row["id"], uuid.UUID)


async def test_values_are_bound_through_the_column_types(app: FastAPI, patient: Person) -> None:
    record_id = uuid.uuid4()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    append = Statement(
        insert(AUDIT).values(
            {column: bindparam(f"v_{column.name}", type_=column.type) for column in AUDIT.c}
        )
    )
    values = {
        "v_id": record_id,
        "v_at": at,
        "v_request_id": "r1",
        "v_therapist_id": uuid.uuid4(),
        "v_patient_id": uuid.UUID(patient.id),
        "v_grant_id": None,
        "v_resource": "checkins",
        "v_action": "list",
        "v_entry_ids": ["a", "b"],  # JSON: serialised by the column's type
        "v_count": 2,
        "v_outcome": "allowed",
    }
    async with sessions(app)() as session:
        assert await append.rows(session, values) == []
        stored = (
            await session.execute(
                select(AUDIT.c.at, AUDIT.c.entry_ids, AUDIT.c.grant_id).where(
                    AUDIT.c.id == record_id
                )
            )
        ).one()
        await session.rollback()
    assert tuple(stored) == (at, ["a", "b"], None)


async def test_scalar_is_none_without_a_row_and_literals_keep_their_values(app: FastAPI) -> None:
    nobody = Statement(select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == bindparam("account")).limit(1))
    constant = Statement(select(bindparam("given") + 1))
    async with sessions(app)() as session:
        assert await nobody.scalar(session, {"account": uuid.uuid4()}) is None
        assert await constant.scalar(session, {"given": 41}) == 42


async def test_a_database_error_is_raised_as_sqlalchemy_raises_it(
    app: FastAPI, patient: Person
) -> None:
    duplicate = Statement(
        insert(ACCOUNTS).from_select(
            list(ACCOUNTS.c.keys()),
            select(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("account")),
        )
    )
    async with sessions(app)() as session:
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            await duplicate.rows(session, {"account": uuid.UUID(patient.id)})
        await session.rollback()
        # The session (and its connection) is still good to use afterwards.
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


async def test_it_runs_inside_the_sessions_transaction(app: FastAPI, patient: Person) -> None:
    rename = Statement(
        ACCOUNTS.update()
        .where(ACCOUNTS.c.id == bindparam("account"))
        .values(display_name=bindparam("name"), updated_at=bindparam("now"))
        .returning(ACCOUNTS.c.display_name)
    )
    async with sessions(app)() as session:
        await session.connection()
        assert (
            await rename.scalar(
                session,
                {"account": uuid.UUID(patient.id), "name": "Not kept", "now": datetime.now(UTC)},
            )
            == "Not kept"
        )
        await session.rollback()
    async with sessions(app)() as session:
        name = await session.scalar(
            select(Account.display_name).where(Account.id == uuid.UUID(patient.id))
        )
    assert name != "Not kept"


async def test_statements_that_need_sqlalchemys_execution_are_refused(app: FastAPI) -> None:
    records = table_of(IdempotencyRecord)
    # created_at has a Python-side default, applied only by SQLAlchemy's execution context.
    missing_default = Statement(
        insert(records).values(owner_id=bindparam("owner"), key=bindparam("k"))
    )
    expanding = Statement(
        select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    )
    async with sessions(app)() as session:
        with pytest.raises(TypeError, match="defaults"):
            await missing_default.rows(session, {"owner": uuid.uuid4(), "k": "x"})
        with pytest.raises(TypeError, match="IN lists"):
            await expanding.rows(session, {"ids": [uuid.uuid4()]})


@pytest.mark.postgres_only
async def test_a_statement_that_times_out_fails_as_through_sqlalchemy(
    database_url: str, tmp_path: Path
) -> None:
    # The driver's own timeout (JOURNAL_DB_STATEMENT_TIMEOUT_SECONDS) is not a database error:
    # SQLAlchemy lets it through as it is, and the error handlers answer 503 for it.
    settings = make_settings(tmp_path, database_url, db_statement_timeout_seconds=0.2)
    engine = create_engine(settings)
    sleep = select(func.pg_sleep(bindparam("seconds", type_=Float)))
    try:
        failures = []
        for run in (Statement(sleep).rows, _through_sqlalchemy(sleep)):
            async with async_sessionmaker(engine)() as session:
                with pytest.raises(DATABASE_UNAVAILABLE) as failure:
                    await run(session, {"seconds": 5})
                failures.append(type(failure.value))
        assert failures[0] is failures[1]
    finally:
        await engine.dispose()


def _through_sqlalchemy(statement: Any) -> Any:
    async def run(session: AsyncSession, params: dict[str, Any]) -> Any:
        return (await session.execute(statement, params)).all()

    return run


@pytest.mark.postgres_only
async def test_one_statement_serves_two_kinds_of_database(app: FastAPI, tmp_path: Path) -> None:
    constant = Statement(select(bindparam("given", type_=Float) + 1))
    sqlite = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        async with async_sessionmaker(sqlite)() as session:
            assert await constant.scalar(session, {"given": 41}) == 42
    finally:
        await sqlite.dispose()
    async with sessions(app)() as session:
        assert await constant.scalar(session, {"given": 41}) == 42
