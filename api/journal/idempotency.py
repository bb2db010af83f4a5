"""Idempotency-Key for POST: the first answer is stored with the write, in the same transaction,
and every resend of the same request gets it back byte for byte.

The record is inserted *after* the work, with the answer, in one statement (the common case
costs one INSERT). A request whose key is already taken, by a request that finished earlier or
by one running at the same moment, finds out at that INSERT: on PostgreSQL it waits there for
the other transaction; when that commits, the insert does nothing, so this request rolls back
all it wrote and replays the stored answer instead. If the other rolls back, this one's insert
goes ahead and its work stands. One row, one answer, one write, whatever the timing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Header, Response
from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from api.crypto import UnreadableValue, associated_data
from api.database import cipher_of
from api.errors import BadRequest, Conflict, ProblemError, UnprocessableContent
from api.models import IdempotencyRecord
from api.models.base import table_of, utcnow

# Documented, not validated by FastAPI: a bad key is our 400 (an OAuth error at the token
# endpoint), from check_key below.
KEY_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}
IdempotencyKey = Annotated[
    str | None,
    Header(
        description="Any unique string (1-255 printable ASCII characters; a UUID is ideal). "
        "Resending the same request with the same key returns the first answer and writes nothing; "
        "the same key with a different request is 422.",
        json_schema_extra=KEY_SCHEMA,
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
logger = structlog.get_logger("api.idempotency")
_STORED_HEADERS = ("location", "etag")


def _aad(owner_id: uuid.UUID, key: str) -> bytes:
    return associated_data("idempotency_records", "body", key, owner_id)


def fingerprint(method: str, path: str, canonical_body: str) -> bytes:
    return hashlib.sha256(f"{method} {path}\n{canonical_body}".encode()).digest()


def check_key(key: str) -> None:
    """Refuse (400) a key that is empty, longer than 255 or not printable ASCII."""
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters.")


async def once(
    session: AsyncSession,
    owner_id: uuid.UUID,
    key: str | None,
    request_fingerprint: bytes,
    produce: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``produce`` once per key; replay its response for every later identical request."""
    if key is None:
        return await produce()
    check_key(key)
    try:
        response = await produce()
    except ProblemError:
        # A resend whose work cannot be done twice (a version has moved on, an id is taken) is
        # still answered as the first time was, when there was a first time.
        await session.rollback()
        if await _stored(session, owner_id, key) is None:
            raise
        return await _replay(session, owner_id, key, request_fingerprint)
    connection = await session.connection()
    recorded = await connection.execute(
        record_statement(connection.dialect.name),
        record_values(session, owner_id, key, request_fingerprint, response),
    )
    if recorded.first() is None:
        return await taken_first(session, owner_id, key, request_fingerprint)
    return response


def record_values(
    session: AsyncSession,
    owner_id: uuid.UUID,
    key: str,
    request_fingerprint: bytes,
    response: Response,
) -> dict[str, Any]:
    """The record of ``response`` as the first answer under ``key``, as its INSERT binds it
    (here, and in ``api.journal.writes``'s one statement)."""
    stored = {name: response.headers[name] for name in _STORED_HEADERS if name in response.headers}
    return {
        "record_owner": owner_id,
        "record_key": key,
        "record_fingerprint": request_fingerprint,
        "record_created_at": utcnow(),
        "answer_resource": _answered_for(response),
        "answer_status": response.status_code,
        "answer_headers": json.dumps(stored),
        # The answer repeats the entry's text: it is kept encrypted like the entry.
        "answer_body": cipher_of(session).encrypt(
            bytes(response.body).decode(), _aad(owner_id, key)
        ),
    }


async def taken_first(
    session: AsyncSession, owner_id: uuid.UUID, key: str, request_fingerprint: bytes
) -> Response:
    """The key was taken first (its record did not go in): undo this request's work and
    answer as the first time."""
    await session.rollback()
    return await _replay(session, owner_id, key, request_fingerprint)


def _answered_for(response: Response) -> uuid.UUID | None:
    """The id of what the answer created, from its Location (``/v1/checkins/<id>``)."""
    location = response.headers.get("location", "")
    try:
        return uuid.UUID(location.rsplit("/", 1)[-1]) if location else None
    except ValueError:
        return None


async def forget(
    session: AsyncSession, owner_id: uuid.UUID, resource_ids: Sequence[uuid.UUID]
) -> None:
    """Remove the stored answers about entries or grants that are going away."""
    if resource_ids:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.owner_id == owner_id,
                IdempotencyRecord.resource_id.in_(resource_ids),
            )
        )


async def stored_answers(
    session: AsyncSession, owner_id: uuid.UUID
) -> list[tuple[IdempotencyRecord, Any]]:
    """The owner's stored answers, oldest first, each with its body decoded (None when it
    cannot be read): for the owner's export. The fingerprint (a hash) stays out."""
    records = await session.scalars(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.owner_id == owner_id)
        .order_by(IdempotencyRecord.created_at, IdempotencyRecord.key)
    )
    answers: list[tuple[IdempotencyRecord, Any]] = []
    for record in records.all():
        try:
            answer = json.loads(cipher_of(session).decrypt(record.body, _aad(owner_id, record.key)))
        except (UnreadableValue, ValueError):
            answer = None
        answers.append((record, answer))
    return answers


async def sweep_expired(
    sessionmaker: async_sessionmaker[AsyncSession], older_than: datetime, batch: int
) -> int:
    """Delete at most ``batch`` records made before ``older_than``, oldest first, in one short
    transaction; the number deleted. Bounded so that a sweep never holds the table for long."""
    oldest = (
        select(IdempotencyRecord.owner_id, IdempotencyRecord.key)
        .where(IdempotencyRecord.created_at < older_than)
        .order_by(IdempotencyRecord.created_at)
        .limit(batch)
    )
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            delete(IdempotencyRecord)
            .where(tuple_(IdempotencyRecord.owner_id, IdempotencyRecord.key).in_(oldest))
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def sweep_forever(
    sessionmaker: async_sessionmaker[AsyncSession], ttl: timedelta, batch: int, every: float
) -> None:
    """The background sweep of one process: a bounded batch of expired records each ``every``
    seconds, sooner (a second) while whole batches come back. A failure is logged, never raised:
    the next sweep tries again."""
    while True:
        try:
            swept = await sweep_expired(sessionmaker, utcnow() - ttl, batch)
        except Exception as exc:
            logger.warning("idempotency sweep failed", error_type=type(exc).__name__)
            swept = 0
        await asyncio.sleep(min(every, 1.0) if swept >= batch else every)


async def replayed(
    session: AsyncSession, owner_id: uuid.UUID, key: str, request_fingerprint: bytes
) -> Response | None:
    """The stored answer to this very request under ``key``, or None when there is none (no
    record, or one for another request): for callers that must decide before doing anything."""
    check_key(key)
    record = await _stored(session, owner_id, key)
    if record is None or record.fingerprint != request_fingerprint:
        return None
    return await _replay(session, owner_id, key, request_fingerprint)


# Built once, on the table rather than the mapped class (plain SQL, no ORM machinery): it runs
# on every POST that carries a key.
_RECORDS = table_of(IdempotencyRecord)


@functools.cache
def record_statement(dialect: str) -> ReturningInsert[str]:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_RECORDS)
        .values(
            owner_id=bindparam("record_owner"),
            key=bindparam("record_key"),
            fingerprint=bindparam("record_fingerprint"),
            status_code=bindparam("answer_status"),
            headers=bindparam("answer_headers"),
            body=bindparam("answer_body"),
            created_at=bindparam("record_created_at"),
            resource_id=bindparam("answer_resource", type_=_RECORDS.c.resource_id.type),
        )
        .on_conflict_do_nothing(index_elements=[_RECORDS.c.owner_id, _RECORDS.c.key])
        .returning(_RECORDS.c.key)
    )


async def _stored(session: AsyncSession, owner_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key
        )
    )


async def _replay(
    session: AsyncSession, owner_id: uuid.UUID, key: str, request_fingerprint: bytes
) -> Response:
    record = await _stored(session, owner_id, key)
    if record is None:
        # Gone between the INSERT that found it and this read: only an account erased meanwhile.
        raise Conflict("This Idempotency-Key cannot be replayed: use a new key.")
    if record.fingerprint != request_fingerprint:
        raise UnprocessableContent(
            "This Idempotency-Key was already used for a different request.",
            loc=("header", "idempotency-key"),
        )
    headers = {**json.loads(record.headers), REPLAYED_HEADER: "true"}
    try:
        body = cipher_of(session).decrypt(record.body, _aad(owner_id, key))
    except UnreadableValue:
        logger.error("unreadable idempotency record", reason="decryption failed")
        raise Conflict(
            "The first answer to this Idempotency-Key cannot be replayed: use a new key."
        ) from None
    return Response(
        body, status_code=record.status_code, headers=headers, media_type="application/json"
    )
