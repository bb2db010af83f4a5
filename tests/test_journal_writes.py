"""``api.journal.writes``: the one-statement write (PostgreSQL's) and the separate steps (SQLite's)
give the same outcome and leave the same rows, for the same inputs, refusals included.

Both forms run on PostgreSQL from the same state, each in a transaction rolled back afterwards:
logins live, revoked, of a therapist, or of someone else; ids fresh, in use (the patient's own or
someone else's) or tombstoned; no key, a fresh one or one already taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.journal.repository import _scalar_defaults
from api.journal.writes import EntryWrite, Outcome, in_one_statement, in_steps
from api.models import AuditRecord, ChangeCounter, Checkin, IdempotencyRecord, Role, Tombstone
from api.models.base import table_of, utcnow
from api.settings import Settings
from tests.support.forms import app_on_own_loop
from tests.support.people import Person, register, token

pytestmark = pytest.mark.postgres_only

Form = Callable[[AsyncConnection, EntryWrite], Awaitable[Outcome]]


@dataclass
class World:
    engine: AsyncEngine
    logins: dict[str, tuple[uuid.UUID, uuid.UUID]]  # name: (account, login)
    ids: dict[str, uuid.UUID]
    taken_key: str


async def _login_of(app: Any, access_token: str) -> uuid.UUID:
    login: uuid.UUID = app.state.tokens.verify_access(access_token).login_id
    return login


async def _build(app: Any, client: httpx.AsyncClient) -> World:
    patient = await register(client, "patient")
    other = await register(client, "patient")
    therapist = await register(client, "therapist")
    revoked = await token(client, patient.email)
    assert (
        await client.post("/v1/auth/revoke", data={"token": revoked["refresh_token"]})
    ).is_success

    async def checkin(person: Person, **headers: str) -> uuid.UUID:
        made = await client.post(
            "/v1/checkins", json={"mood": 5}, headers={**person.headers, **headers}
        )
        assert made.status_code == 201, made.text
        return uuid.UUID(made.json()["id"])

    deleted = await checkin(patient)
    gone = await client.delete(
        f"/v1/checkins/{deleted}", headers={**patient.headers, "If-Match": '"1"'}
    )
    assert gone.status_code == 204
    key = "taken-" + uuid.uuid4().hex
    own = await checkin(patient, **{"Idempotency-Key": key})
    patient_id = uuid.UUID(patient.id)
    return World(
        engine=app.state.engine,
        logins={
            "live": (patient_id, await _login_of(app, patient.access_token)),
            "revoked": (patient_id, await _login_of(app, revoked["access_token"])),
            "someone else's": (patient_id, await _login_of(app, other.access_token)),
            "a therapist's": (
                uuid.UUID(therapist.id),
                await _login_of(app, therapist.access_token),
            ),
        },
        ids={
            "own": own,
            "deleted": deleted,
            "someone else's": await checkin(other),
        },
        taken_key=key,
    )


def _entry(
    world: World, login: str, entry: str, key: str | None, mood: int, note: str | None
) -> EntryWrite:
    owner, login_id = world.logins[login]
    now = utcnow()
    entry_id = world.ids.get(entry) or uuid.uuid4()
    values = {
        **_scalar_defaults(Checkin),
        "mood": mood,
        "note": note,
        "recorded_at": now,
        "backfilled": False,
        "id": entry_id,
        "owner_id": owner,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    record = None
    if key is not None:
        record = {
            "record_owner": owner,
            "record_key": world.taken_key if key == "taken" else f"k-{uuid.uuid4().hex}",
            "record_fingerprint": b"\x01" * 32,
            "record_created_at": now,
            "answer_resource": entry_id,
            "answer_status": 201,
            "answer_headers": "{}",
            "answer_body": "sealed",
        }
    return EntryWrite(Checkin, owner, login_id, values, record)


async def _rows(connection: AsyncConnection, entry: EntryWrite) -> tuple[Any, ...]:
    """What a write can change: the counter, the entry's row, the records, the audit trail."""
    counters, records = table_of(ChangeCounter), table_of(IdempotencyRecord)
    checkins, tombstones, audit = table_of(Checkin), table_of(Tombstone), table_of(AuditRecord)
    owner = entry.owner_id

    async def scalar(statement: Any) -> Any:
        return (await connection.execute(statement)).scalar()

    return (
        await scalar(select(counters.c.last_seq).where(counters.c.owner_id == owner)),
        (await connection.execute(select(checkins).where(checkins.c.id == entry.values["id"])))
        .mappings()
        .all(),
        (
            await connection.execute(
                select(records.c.key, records.c.body).where(records.c.owner_id == owner)
            )
        ).all(),
        await scalar(select(func.count()).select_from(audit).where(audit.c.patient_id == owner)),
        await scalar(select(func.count()).select_from(tombstones)),
    )


async def _run(world: World, form: Form, entry: EntryWrite) -> tuple[Any, ...]:
    async with world.engine.connect() as connection:
        transaction = await connection.begin()
        before = await _rows(connection, entry)
        outcome = await form(connection, entry)
        after = await _rows(connection, entry)
        await transaction.rollback()
    if outcome.role is not Role.PATIENT:
        assert after == before  # refused: nothing written
    return outcome, after


logins = st.sampled_from(["live", "revoked", "someone else's", "a therapist's"])
entries = st.sampled_from(["fresh", "own", "deleted", "someone else's"])
keys = st.sampled_from([None, "fresh", "taken"])
moods = st.integers(0, 10)
notes = st.none() | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


def test_one_statement_and_separate_steps_write_the_same(
    settings: Settings, tmp_path: Path
) -> None:
    with app_on_own_loop(settings, tmp_path) as own:
        loop, app, client = own.loop, own.app, own.client
        world = loop.run_until_complete(_build(app, client))

        @hypothesis.settings(
            max_examples=60, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
        )
        @hypothesis.given(login=logins, entry=entries, key=keys, mood=moods, note=notes)
        # Every way a write ends, whatever else is drawn: refused, id in use, written with no
        # key, with a fresh key, with a key already taken.
        @hypothesis.example(login="revoked", entry="fresh", key="fresh", mood=1, note=None)
        @hypothesis.example(login="a therapist's", entry="fresh", key=None, mood=1, note=None)
        @hypothesis.example(login="live", entry="deleted", key="fresh", mood=2, note="x")
        @hypothesis.example(login="live", entry="fresh", key=None, mood=3, note="")
        @hypothesis.example(login="live", entry="fresh", key="fresh", mood=4, note="y")
        @hypothesis.example(login="live", entry="fresh", key="taken", mood=5, note=None)
        def run(login: str, entry: str, key: str | None, mood: int, note: str | None) -> None:
            write = _entry(world, login, entry, key, mood, note)
            steps = loop.run_until_complete(_run(world, in_steps, write))
            one = loop.run_until_complete(_run(world, in_one_statement, write))
            assert one == steps

        run()
