"""Free text is encrypted at rest: no plaintext in the database, tampering is detected without a
500, and keys rotate with a resumable re-encryption pass."""

from __future__ import annotations

import io
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import column, select, table, text, update

from api.app import create_app
from api.crypto import (
    UNREADABLE_TEXT,
    FieldCipher,
    UnreadableValue,
    associated_data,
    encryption_key_dir,
    load_cipher,
    write_new_encryption_key,
)
from api.database import create_sessionmaker
from api.journal.reencryption import reencrypt
from api.logs import json_formatter
from api.models import JOURNAL_MODELS, Intention, JournalEntry, SafetyFlag
from api.settings import Settings
from tests.conftest import SERVER_URL, make_settings
from tests.support.conformance import conforming_client
from tests.support.databases import fresh_database, migrate
from tests.support.people import Person, invitations_on, register
from tests.support.sharing import bearer, give_grant, mint

CANARY = "okapi-canary-93c1"
TABLES = [
    "dosing_sessions",
    "intentions",
    "reflections",
    "checkins",
    "idempotency_records",
    "assessments",
    "safety_flags",
]


def aad(row: uuid.UUID, owner: uuid.UUID, column: str = "text", table: str = "intentions") -> bytes:
    return associated_data(table, column, row, owner)


def test_values_are_bound_to_their_place() -> None:
    cipher = FieldCipher([secrets.token_bytes(32)])
    row, owner = uuid.uuid4(), uuid.uuid4()
    sealed = cipher.encrypt("my words", aad(row, owner))
    assert cipher.decrypt(sealed, aad(row, owner)) == "my words"
    assert sealed != cipher.encrypt("my words", aad(row, owner)), "a nonce was reused"
    for elsewhere in (
        aad(uuid.uuid4(), owner),
        aad(row, uuid.uuid4()),
        aad(row, owner, column="note"),
        aad(row, owner, table="reflections"),
    ):
        with pytest.raises(UnreadableValue):
            cipher.decrypt(sealed, elsewhere)


def test_a_flipped_byte_or_an_unknown_key_is_detected() -> None:
    cipher = FieldCipher([secrets.token_bytes(32)])
    row, owner = uuid.uuid4(), uuid.uuid4()
    sealed = cipher.encrypt("my words", aad(row, owner))
    head, payload = sealed.rsplit(".", 1)
    flipped = head + "." + payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    for broken in (
        flipped,
        sealed.replace(cipher.current_kid, "000000000000"),
        "plain text",
        "v1.x",
    ):
        with pytest.raises(UnreadableValue):
            cipher.decrypt(broken, aad(row, owner))


def test_the_newest_key_encrypts_and_every_key_decrypts() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    row, owner = uuid.uuid4(), uuid.uuid4()
    before = FieldCipher([old]).encrypt("kept", aad(row, owner))
    rotated = FieldCipher([new, old])
    assert rotated.decrypt(before, aad(row, owner)) == "kept"
    assert not before.startswith(f"v1.{rotated.current_kid}.")
    assert rotated.encrypt("kept", aad(row, owner)).startswith(f"v1.{rotated.current_kid}.")


async def write_everything(client: httpx.AsyncClient, person: Person) -> dict[str, str]:
    session = await client.post(
        "/v1/sessions",
        headers=person.headers,
        json={
            "started_at": "2026-01-01T10:00:00Z",
            "route": "im",
            "setting": "clinic",
            "notes": f"notes {CANARY}",
        },
    )
    intention = await client.post(
        "/v1/intentions", headers=person.headers, json={"text": f"intent {CANARY}"}
    )
    reflection = await client.post(
        "/v1/reflections",
        headers={**person.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"},
        json={
            "text": f"reflect {CANARY}",
            "emotions": [f"emo {CANARY}"],
            "prompts": [{"prompt": "What came up?", "answer": f"answer {CANARY}"}],
        },
    )
    checkin = await client.post(
        "/v1/checkins", headers=person.headers, json={"mood": 3, "note": f"note {CANARY}"}
    )
    # A safety flag, acknowledged by a therapist with a note about the patient.
    flagged = await client.post(
        "/v1/assessments", headers=person.headers, json={"instrument": "phq9", "answers": [1] * 9}
    )
    therapist = await register(client, "therapist")
    grant = await give_grant(client, person, therapist, ["assessments:read"])
    read = await mint(client, therapist, grant["id"])
    acknowledged = await client.post(
        f"/v1/patients/{person.id}/safety-flags/{flagged.json()['raised_flag']['id']}/acknowledgement",
        headers=bearer(read),
        json={"note": f"flag note {CANARY}"},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    return {
        name: r.json()["id"]
        for name, r in [
            ("sessions", session),
            ("intentions", intention),
            ("reflections", reflection),
            ("checkins", checkin),
        ]
    }


async def raw_rows(app: FastAPI) -> str:
    async with app.state.engine.connect() as connection:
        dumped: list[str] = []
        for table in TABLES:
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608 - fixed names
            dumped.extend(repr(tuple(row)) for row in rows)
    return "\n".join(dumped)


async def test_no_plaintext_reaches_the_database(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, settings: Settings
) -> None:
    ids = await write_everything(client, patient)
    # Through the API every word comes back as written.
    reflection = (
        await client.get(f"/v1/reflections/{ids['reflections']}", headers=patient.headers)
    ).json()
    assert reflection["text"] == f"reflect {CANARY}"
    assert reflection["prompts"][0]["answer"] == f"answer {CANARY}"
    assert reflection["emotions"] == [f"emo {CANARY}"]
    for resource, field in (("sessions", "notes"), ("intentions", "text"), ("checkins", "note")):
        read = (await client.get(f"/v1/{resource}/{ids[resource]}", headers=patient.headers)).json()
        assert CANARY in read[field]
    # In the database: not a trace, in any table, or in SQLite's files.
    dump = await raw_rows(app)
    assert ids["intentions"].replace("-", "") in dump.replace("-", "") or ids["intentions"] in dump
    assert "v1." in dump
    assert CANARY not in dump
    if settings.is_sqlite:
        path = Path(settings.database_url.split("///", 1)[1])
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                assert CANARY.encode() not in file.read_bytes()


@pytest.fixture
def error_log() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


async def test_tampering_is_detected_and_reported_without_a_500(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, error_log: io.StringIO
) -> None:
    first = (
        await client.post("/v1/intentions", headers=patient.headers, json={"text": "first"})
    ).json()
    second = (
        await client.post("/v1/intentions", headers=patient.headers, json={"text": "second"})
    ).json()
    async with app.state.sessionmaker() as session, session.begin():
        stored = await session.scalar(
            select(Intention.text).where(Intention.id == uuid.UUID(first["id"]))
        )
        assert stored is not None
        head, payload = stored.rsplit(".", 1)
        flipped = head + "." + payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
        await session.execute(
            update(Intention).where(Intention.id == uuid.UUID(first["id"])).values(text=flipped)
        )
        # A value moved to another row does not decrypt there either.
        await session.execute(
            update(Intention).where(Intention.id == uuid.UUID(second["id"])).values(text=stored)
        )
    for entry in (first, second):
        response = await client.get(f"/v1/intentions/{entry['id']}", headers=patient.headers)
        assert response.status_code == 200
        assert response.json()["text"] == UNREADABLE_TEXT
    listed = await client.get("/v1/intentions", headers=patient.headers)
    assert listed.status_code == 200
    events = [json.loads(line) for line in error_log.getvalue().splitlines()]
    flagged = {e["row_id"] for e in events if e.get("event") == "unreadable value"}
    assert {first["id"], second["id"]} <= flagged


@pytest.mark.parametrize("moved_to", ["another key", "another patient"])
async def test_a_stored_answer_moved_to_another_record_is_not_replayed(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, moved_to: str
) -> None:
    # A stored answer is bound to its owner and key: copied into another record (the same
    # request's fingerprint there), it does not decrypt, and nobody is answered with it.
    other = patient if moved_to == "another key" else await register(client)
    source_key, target_key = str(uuid.uuid4()), str(uuid.uuid4())
    if moved_to == "another patient":
        target_key = source_key
    sent = {"text": f"first {CANARY}"}
    first = await client.post(
        "/v1/intentions", json=sent, headers={**patient.headers, "Idempotency-Key": source_key}
    )
    target = {**other.headers, "Idempotency-Key": target_key}
    theirs = await client.post("/v1/intentions", json=sent, headers=target)
    assert (first.status_code, theirs.status_code) == (201, 201)
    records = table("idempotency_records", column("owner_id"), column("key"), column("body"))
    async with app.state.engine.begin() as connection:
        stored = await connection.scalar(
            select(records.c.body).where(
                records.c.owner_id == uuid.UUID(patient.id), records.c.key == source_key
            )
        )
        await connection.execute(
            records.update()
            .where(records.c.owner_id == uuid.UUID(other.id), records.c.key == target_key)
            .values(body=stored)
        )
    replayed = await client.post("/v1/intentions", json=sent, headers=target)
    assert replayed.status_code == 409
    assert first.json()["id"] not in replayed.text


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    """Re-encryption walks the whole database: it gets one of its own."""
    with fresh_database(SERVER_URL, tmp_path) as url, invitations_on(url):
        migrate(url)
        yield url


@pytest.fixture
async def own_app(own_database: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path / "data", own_database))
    async with application.router.lifespan_context(application):
        yield application


async def test_rotation_reencrypts_every_row_in_resumable_batches(
    own_app: FastAPI, tmp_path: Path
) -> None:
    app = own_app
    settings: Settings = app.state.settings
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as client:
        patient = await register(client)
        ids = await write_everything(client, patient)
        # A new key joins the ring: the old one still reads, the new one writes.
        keys_settings = settings.model_copy(update={"data_dir": tmp_path / "rotated"})
        old_dir = encryption_key_dir(settings)
        new_dir = encryption_key_dir(keys_settings)
        new_dir.mkdir(parents=True)
        for key_file in old_dir.glob("*.key"):
            (new_dir / key_file.name).write_text(key_file.read_text())
        new_kid = write_new_encryption_key(new_dir)
        rotated = load_cipher(keys_settings)
        assert rotated.current_kid == new_kid
        sessionmaker = create_sessionmaker(app.state.engine, rotated)

        # Stopped after two batches of one row each, as if the process had been killed...
        partial = await reencrypt(sessionmaker, rotated, batch_size=1, max_batches=2)
        assert (partial.moved, partial.unreadable) == (2, [])
        # ...then run again: it goes on where it stopped, and a third run finds nothing to do.
        rest = await reencrypt(sessionmaker, rotated, batch_size=2)
        assert rest.unreadable == []
        # 6 journal values, 1 stored answer and 1 safety flag's note
        assert partial.moved + rest.moved == 8
        assert (await reencrypt(sessionmaker, rotated)).moved == 0
        models: list[type[JournalEntry] | type[SafetyFlag]] = [*JOURNAL_MODELS, SafetyFlag]
        columns = [(m.__tablename__, c) for m in models for c in m.encrypted]
        async with app.state.engine.connect() as connection:
            for table, column in [*columns, ("idempotency_records", "body")]:
                query = text(f"SELECT {column} FROM {table}")  # noqa: S608 - names from the models
                stored = [value for value in (await connection.execute(query)).scalars() if value]
                assert all(value.startswith(f"v1.{new_kid}.") for value in stored), (table, column)
        assert CANARY not in await raw_rows(app)
        # And the service, with the rotated ring, still reads every word.
        async with sessionmaker() as session:
            stored_text = await session.scalar(
                select(Intention.text).where(Intention.id == uuid.UUID(ids["intentions"]))
            )
            assert stored_text is not None
            owner = uuid.UUID(patient.id)
            assert (
                rotated.decrypt(stored_text, aad(uuid.UUID(ids["intentions"]), owner))
                == f"intent {CANARY}"
            )
