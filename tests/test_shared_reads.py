"""``api.patients.reads``: a therapist's page read in one statement (PostgreSQL's) and in separate
steps (SQLite's) gives the same outcome and leaves the same audit trail, for the same inputs,
refusals included.

Both forms run on PostgreSQL from the same state, each in a transaction rolled back afterwards:
grants live, revoked, expired or another patient's; the therapist's login live or ended; the
read token fresh, revoked by itself, or none (the web view's); pages of every size with and
without `since`, `until` and a cursor, over shared and private entries at distinct and equal
times.
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
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.audit.repository import audit_values
from api.models import AuditRecord, Checkin, Grant, RevokedReadToken
from api.models.base import table_of, utcnow
from api.patients.access import Reader
from api.patients.reads import SharedRead, SharedRows, in_one_statement, in_steps
from api.settings import Settings
from tests.support.forms import afters, app_on_own_loop, hours, page_request
from tests.support.people import register, token
from tests.support.sharing import give_grant

pytestmark = pytest.mark.postgres_only

Form = Callable[[AsyncConnection, SharedRead], Awaitable[SharedRows]]
START = datetime(2026, 11, 1, 9, 0, tzinfo=utcnow().tzinfo)


@dataclass
class World:
    engine: AsyncEngine
    patient_id: uuid.UUID
    therapist_id: uuid.UUID
    grants: dict[str, uuid.UUID]
    logins: dict[str, uuid.UUID]
    revoked_jti: str
    # The patient's check-ins by their time, newest first, with whether each is private.
    times: list[datetime]


async def _build(app: Any, client: httpx.AsyncClient) -> World:
    patient = await register(client, "patient")
    other = await register(client, "patient")
    therapist = await register(client, "therapist")
    ended = await token(client, therapist.email)
    assert (await client.post("/v1/auth/revoke", data={"token": ended["refresh_token"]})).is_success
    # Nine check-ins an hour apart and two at one instant (the id breaks the tie), a third of
    # them private.
    times = [START + timedelta(hours=h) for h in range(9)] + [START + timedelta(hours=4)]
    for n, at in enumerate(times):
        made = await client.post(
            "/v1/checkins",
            json={
                "mood": n % 11,
                "note": f"note {n}",
                "recorded_at": at.isoformat(),
                "private": n % 3 == 0,
            },
            headers=patient.headers,
        )
        assert made.status_code == 201, made.text
    grants = {
        name: uuid.UUID((await give_grant(client, patient, therapist))["id"])
        for name in ("live", "revoked", "expired")
    }
    grants["another patient's"] = uuid.UUID((await give_grant(client, other, therapist))["id"])
    gone = await client.delete(f"/v1/grants/{grants['revoked']}", headers=patient.headers)
    assert gone.status_code in (200, 204), gone.text
    revoked_jti = "revoked-" + uuid.uuid4().hex
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(table_of(Grant))
            .where(table_of(Grant).c.id == grants["expired"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await connection.execute(
            insert(table_of(RevokedReadToken)).values(
                jti=revoked_jti, expires_at=utcnow() + timedelta(hours=1)
            )
        )
    tokens = app.state.tokens
    return World(
        revoked_jti=revoked_jti,
        engine=app.state.engine,
        patient_id=uuid.UUID(patient.id),
        therapist_id=uuid.UUID(therapist.id),
        grants=grants,
        logins={
            "live": tokens.verify_access(therapist.access_token).login_id,
            "ended": tokens.verify_access(ended["access_token"]).login_id,
        },
        times=sorted(times, reverse=True),
    )


def _read(
    world: World,
    grant: str,
    login: str,
    jti: str,
    limit: int,
    since: int | None,
    until: int | None,
    after: tuple[int, str] | None,
) -> SharedRead:
    now = utcnow()
    reader = Reader(
        therapist_id=world.therapist_id,
        grant_id=world.grants[grant],
        patient_id=world.patient_id,
        scopes=frozenset({"checkins:read"}),
        login_id=world.logins[login],
        jti={"none": None, "fresh": "fresh", "revoked": world.revoked_jti}[jti],
    )
    page = page_request(START, limit, since, until, after)
    audit = audit_values(
        AuditRecord(
            at=now,
            request_id="shared-" + uuid.uuid4().hex,
            therapist_id=world.therapist_id,
            patient_id=world.patient_id,
            grant_id=world.grants[grant],
            resource="checkins",
            action="list",
            entry_ids=[],
            count=0,
            outcome="allowed",
        )
    )
    return SharedRead(model=Checkin, reader=reader, page=page, audit=audit, now=now)


async def _audit(connection: AsyncConnection, patient_id: uuid.UUID) -> list[Any]:
    audit = table_of(AuditRecord)
    found = await connection.execute(
        select(audit).where(audit.c.patient_id == patient_id).order_by(audit.c.at, audit.c.id)
    )
    return [dict(row) for row in found.mappings()]


async def _run(world: World, form: Form, read: SharedRead) -> tuple[Any, ...]:
    async with world.engine.connect() as connection:
        transaction = await connection.begin()
        before = await _audit(connection, world.patient_id)
        outcome = await form(connection, read)
        after = await _audit(connection, world.patient_id)
        await transaction.rollback()
    written = after[len(before) :]
    assert after[: len(before)] == before
    if not outcome.live:
        assert outcome.rows == []
        assert written == []
    else:
        # One record, naming the entries of the page (not the one read past it) in its order.
        [record] = written
        shown = [str(row["id"]) for row in outcome.rows[: read.page.limit]]
        assert record["entry_ids"] == shown
        assert record["count"] == len(shown)
        assert all(row["private"] is False for row in outcome.rows)
    return outcome, written


grants = st.sampled_from(["live", "revoked", "expired", "another patient's"])
logins = st.sampled_from(["live", "ended"])
jtis = st.sampled_from(["none", "fresh", "revoked"])


def test_one_statement_and_separate_steps_read_the_same(settings: Settings, tmp_path: Path) -> None:
    with app_on_own_loop(settings, tmp_path) as own:
        loop, app, client = own.loop, own.app, own.client
        world = loop.run_until_complete(_build(app, client))

        @hypothesis.settings(
            max_examples=80, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
        )
        @hypothesis.given(
            grant=grants,
            login=logins,
            jti=jtis,
            limit=st.integers(1, 12),
            since=hours,
            until=hours,
            after=afters,
        )
        # Every way a read ends, whatever else is drawn: each refusal, an empty page, a page with
        # more after it, the last page, a cursor inside the tie.
        @hypothesis.example("revoked", "live", "none", 5, None, None, None)
        @hypothesis.example("expired", "live", "fresh", 5, None, None, None)
        @hypothesis.example("another patient's", "live", "none", 5, None, None, None)
        @hypothesis.example("live", "ended", "fresh", 5, None, None, None)
        @hypothesis.example("live", "live", "revoked", 5, None, None, None)
        @hypothesis.example("live", "live", "none", 3, None, None, None)
        @hypothesis.example("live", "live", "fresh", 12, None, None, None)
        @hypothesis.example("live", "live", "none", 2, 1, 8, (4, "high"))
        @hypothesis.example("live", "live", "none", 5, 9, 2, None)
        def run(
            grant: str,
            login: str,
            jti: str,
            limit: int,
            since: int | None,
            until: int | None,
            after: tuple[int, str] | None,
        ) -> None:
            read = _read(world, grant, login, jti, limit, since, until, after)
            steps = loop.run_until_complete(_run(world, in_steps, read))
            one = loop.run_until_complete(_run(world, in_one_statement, read))
            assert one == steps
            live = grant == "live" and login == "live" and jti != "revoked"
            assert steps[0].live is live

        run()


def test_a_shared_page_is_the_shared_entries_newest_first(
    settings: Settings, tmp_path: Path
) -> None:
    """An oracle for both forms: the page is the patient's shared check-ins by time then id, newest
    first, cut at the limit."""
    with app_on_own_loop(settings, tmp_path) as own:
        loop, app, client = own.loop, own.app, own.client
        world = loop.run_until_complete(_build(app, client))

        async def expected() -> list[uuid.UUID]:
            checkins = table_of(Checkin)
            async with world.engine.connect() as connection:
                found = await connection.execute(
                    select(checkins.c.id, checkins.c.recorded_at, checkins.c.private).where(
                        checkins.c.owner_id == world.patient_id
                    )
                )
                rows = [row for row in found if not row.private]
            rows.sort(key=lambda row: (row.recorded_at, row.id), reverse=True)
            return [row.id for row in rows]

        shared = loop.run_until_complete(expected())
        assert len(shared) == 6
        for form in (in_steps, in_one_statement):
            read = _read(world, "live", "live", "none", 4, None, None, None)
            outcome, _ = loop.run_until_complete(_run(world, form, read))
            assert [row["id"] for row in outcome.rows] == shared[:5]
