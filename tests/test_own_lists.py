"""``api.journal.lists``: a patient's own page read in one statement (PostgreSQL's) and in separate
steps (SQLite's) gives the same outcome for the same inputs, refusals included.

Both forms run on PostgreSQL from the same state: logins live, revoked, of someone else, or of a
therapist; pages of every size with and without `since`, `until`, `session_id` and a cursor,
over shared and private entries at distinct and equal times.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth.dependencies import Caller
from api.journal.lists import OwnRead, OwnRows, in_one_statement, in_steps
from api.models import Reflection, Role
from api.models.base import table_of, utcnow
from api.settings import Settings
from tests.support.forms import afters, app_on_own_loop, hours, page_request
from tests.support.people import register, token

pytestmark = pytest.mark.postgres_only

Form = Callable[[AsyncConnection, OwnRead], Awaitable[OwnRows]]
START = datetime(2026, 11, 1, 9, 0, tzinfo=utcnow().tzinfo)


@dataclass
class World:
    engine: AsyncEngine
    patient_id: uuid.UUID
    callers: dict[str, Caller]
    sessions: dict[str, uuid.UUID]


async def _build(app: Any, client: httpx.AsyncClient) -> World:
    patient = await register(client, "patient")
    other = await register(client, "patient")
    therapist = await register(client, "therapist")
    revoked = await token(client, patient.email)
    assert (
        await client.post("/v1/auth/revoke", data={"token": revoked["refresh_token"]})
    ).is_success
    session = await client.post(
        "/v1/sessions",
        json={
            "started_at": START.isoformat(),
            "dose_mg": 50,
            "route": "sublingual",
            "setting": "home",
        },
        headers=patient.headers,
    )
    assert session.status_code == 201, session.text
    session_id = session.json()["id"]
    # Reflections (they may name a session): nine an hour apart and two at one instant (the id
    # breaks the tie), a third private, half of them naming the session.
    times = [START + timedelta(hours=h) for h in range(9)] + [START + timedelta(hours=4)]
    for n, at in enumerate(times):
        made = await client.post(
            "/v1/reflections",
            json={
                "text": f"reflection {n}",
                "written_at": at.isoformat(),
                "private": n % 3 == 0,
                **({"session_id": session_id} if n % 2 else {}),
            },
            headers=patient.headers,
        )
        assert made.status_code == 201, made.text
    tokens = app.state.tokens

    def caller(account: str, access_token: str, role: Role) -> Caller:
        claims = tokens.verify_access(access_token)
        return Caller(id=uuid.UUID(account), role=role, login_id=claims.login_id, checked=False)

    patient_id = uuid.UUID(patient.id)
    return World(
        engine=app.state.engine,
        patient_id=patient_id,
        callers={
            "live": caller(patient.id, patient.access_token, Role.PATIENT),
            "revoked": caller(patient.id, revoked["access_token"], Role.PATIENT),
            "someone else's": Caller(
                id=patient_id,
                role=Role.PATIENT,
                login_id=tokens.verify_access(other.access_token).login_id,
                checked=False,
            ),
            "a therapist's": caller(therapist.id, therapist.access_token, Role.PATIENT),
        },
        sessions={"none": uuid.uuid4(), "the session": uuid.UUID(session_id)},
    )


def _read(
    world: World,
    login: str,
    limit: int,
    since: int | None,
    until: int | None,
    session: str | None,
    after: tuple[int, str] | None,
) -> OwnRead:
    page = page_request(
        START, limit, since, until, after, None if session is None else world.sessions[session]
    )
    return OwnRead(model=Reflection, caller=world.callers[login], page=page)


async def _run(world: World, form: Form, read: OwnRead) -> OwnRows:
    async with world.engine.connect() as connection:
        outcome = await form(connection, read)
        await connection.rollback()
    if outcome.role is not Role.PATIENT:
        assert outcome.rows == []
    return outcome


def test_one_statement_and_separate_steps_read_the_same(settings: Settings, tmp_path: Path) -> None:
    with app_on_own_loop(settings, tmp_path) as own:
        loop, app, client = own.loop, own.app, own.client
        world = loop.run_until_complete(_build(app, client))

        @hypothesis.settings(
            max_examples=80, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
        )
        @hypothesis.given(
            login=st.sampled_from(list(world.callers)),
            limit=st.integers(1, 13),
            since=hours,
            until=hours,
            session=st.none() | st.sampled_from(["none", "the session"]),
            after=afters,
        )
        @hypothesis.example("revoked", 5, None, None, None, None)
        @hypothesis.example("someone else's", 5, None, None, None, None)
        @hypothesis.example("a therapist's", 5, None, None, None, None)
        @hypothesis.example("live", 3, None, None, None, None)
        @hypothesis.example("live", 13, None, None, None, None)
        @hypothesis.example("live", 2, 1, 8, "the session", (4, "high"))
        @hypothesis.example("live", 5, 9, 2, None, None)
        def run(
            login: str,
            limit: int,
            since: int | None,
            until: int | None,
            session: str | None,
            after: tuple[int, str] | None,
        ) -> None:
            read = _read(world, login, limit, since, until, session, after)
            steps = loop.run_until_complete(_run(world, in_steps, read))
            one = loop.run_until_complete(_run(world, in_one_statement, read))
            assert one == steps
            expected = {
                "live": Role.PATIENT,
                "revoked": None,
                "someone else's": None,
                "a therapist's": Role.THERAPIST,
            }
            assert steps.role is expected[login]

        run()

        async def oracle() -> list[uuid.UUID]:
            # Every reflection of the patient, private ones included, by time then id, newest first.
            reflections = table_of(Reflection)
            async with world.engine.connect() as connection:
                found = await connection.execute(
                    select(reflections.c.id, reflections.c.written_at).where(
                        reflections.c.owner_id == world.patient_id
                    )
                )
                rows = sorted(found, key=lambda row: (row.written_at, row.id), reverse=True)
            return [row.id for row in rows]

        every = loop.run_until_complete(oracle())
        assert len(every) == 10
        for form in (in_steps, in_one_statement):
            outcome = loop.run_until_complete(
                _run(world, form, _read(world, "live", 6, None, None, None, None))
            )
            assert [row["id"] for row in outcome.rows] == every[:7]
