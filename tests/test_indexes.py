"""Every list and sync query the API runs is served by an index that starts with the owner.

The SQL is captured from real requests, then explained by the database itself. On PostgreSQL
sequential scans are disabled for the check: on tables this small the planner would rightly
prefer them, and the question is whether a usable index exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.entries import RESOURCES, body
from tests.support.people import Person

TABLES = {
    "sessions": "dosing_sessions",
    "intentions": "intentions",
    "reflections": "reflections",
    "checkins": "checkins",
    "assessments": "assessments",
}


@contextmanager
def captured_selects(app: FastAPI, table: str) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        # A list page is one statement on PostgreSQL, its login check a CTE (api.journal.lists).
        if (
            statement.lstrip().upper().startswith(("SELECT", "WITH"))
            and f"FROM {table}" in statement
        ):
            statements.append((statement, parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


async def explain(app: FastAPI, statement: str, parameters: Any) -> str:
    async with app.state.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET enable_seqscan = off")
            rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        else:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        plan = "\n".join(str(row[-1]) for row in rows)
        await connection.rollback()
    return plan


@pytest.mark.parametrize("resource", RESOURCES)
async def test_list_and_sync_queries_use_an_owner_index(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    table = TABLES[resource]
    for _ in range(3):
        await client.post(f"/v1/{resource}", json=body(resource), headers=patient.headers)
    first = (
        await client.get(f"/v1/{resource}", params={"limit": 1}, headers=patient.headers)
    ).json()
    requests: list[dict[str, Any]] = [
        {"limit": 2},
        {"limit": 2, "cursor": first["next_cursor"]},
        {"limit": 2, "since": "2020-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
    ]
    if resource in ("intentions", "reflections"):
        requests.append({"session_id": "00000000-0000-0000-0000-000000000001"})
    with captured_selects(app, table) as statements:
        for params in requests:
            assert (
                await client.get(f"/v1/{resource}", params=params, headers=patient.headers)
            ).status_code == 200
        assert (
            await client.get("/v1/sync", params={"cursor": "0"}, headers=patient.headers)
        ).status_code == 200
    # The single-entry reads by primary key are not what this is about: keep the scans.
    scans = [(sql, params) for sql, params in statements if "ORDER BY" in sql]
    assert len(scans) == len(requests) + 1
    for sql, params in scans:
        plan = await explain(app, sql, params)
        assert re.search(rf"ix_{table}_owner_\w+", plan), f"no owner index for:\n{sql}\n{plan}"
