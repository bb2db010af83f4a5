"""The suite runs against a real, migrated database: a SQLite file by default, or PostgreSQL when
TEST_DATABASE_URL names a server (``postgresql+asyncpg://user@host:port/any``): a fresh database is
then created on that server for the run and dropped after it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings

from api.app import create_app
from api.settings import Settings
from tests.support.conformance import conforming_client
from tests.support.databases import fresh_database, migrate
from tests.support.people import Person, register, use_database

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")
# `make mutants` runs the tests hundreds of times on a loaded machine: the same examples each
# time, and no deadline (a slow example there is the load, not the code).
hypothesis_settings.register_profile("mutants", deadline=None, derandomize=True, database=None)
# Shared fixtures kept beside the helpers they belong with.
pytest_plugins = ["tests.support.logs", "tests.support.clock"]


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL' if SERVER_URL.startswith('postgresql') else 'SQLite'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if SERVER_URL.startswith("postgresql"):
        return
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: run with TEST_DATABASE_URL"))


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        # Cheap hashing: the suite registers hundreds of accounts; the algorithm is the same.
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
        # The suite signs in hundreds of times from one address; limits get their own tests.
        "rate_limit_per_token": "100000/minute",
        "rate_limit_per_address": "100000/minute",
        "rate_limit_token_per_address": "100000/minute",
        "rate_limit_token_per_account": "100000/minute",
        "rate_limit_pairing_per_account": "100000/minute",
        "rate_limit_pairing_per_address": "100000/minute",
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(SERVER_URL, tmp_path_factory.mktemp("db")) as url:
        migrate(url)
        use_database(url)
        yield url


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Settings:
    return make_settings(tmp_path_factory.mktemp("data"), database_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with conforming_client(app) as http:
        yield http


@pytest.fixture
async def patient(client: httpx.AsyncClient) -> Person:
    return await register(client, "patient")


@pytest.fixture
async def therapist(client: httpx.AsyncClient) -> Person:
    return await register(client, "therapist")
