"""Alembic, async: the URL and the schema both come from the service itself."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import event
from sqlalchemy.engine import Connection

from api.database import create_engine
from api.models import Base
from api.models.base import UTCDateTime
from api.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _settings() -> Settings:
    # Tests hand over a URL through the Alembic config; everyone else uses the environment.
    url = config.attributes.get("database_url")
    return Settings(database_url=url) if url else Settings()


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations stand alone: our column types are written as the plain SQLAlchemy types they
    # store as, so a later change to api/ cannot change what an old migration does.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    # Batch mode changes a SQLite table by copying it and dropping the old one. With foreign keys
    # enforced (the service's connections turn them on), that DROP would run every ON DELETE rule
    # pointing at the table: a dosing session's links set to null, an assessment's safety flags
    # deleted. The pragma cannot change inside a transaction, so it is set as the connection opens.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


async def _run_online() -> None:
    engine = create_engine(_settings())
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_foreign_keys_off)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported: run against a database")
asyncio.run(_run_online())
