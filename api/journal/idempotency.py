"""Idempotency-Key for POST: the first answer is stored with the write, in the same transaction,
and every resend of the same request gets it back byte for byte.

Concurrency: the record is inserted *before* the work. A second request with the same key
inserts the same primary key, which on PostgreSQL waits for the first transaction; when that
commits, the insert does nothing and the stored answer is read and replayed. If the first rolls
back, the second goes ahead as if it were first. One row, one answer, whatever the timing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Header, Response
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.crypto import UnreadableValue, associated_data
from api.database import cipher_of
from api.errors import BadRequest, Conflict, UnprocessableContent
from api.models import IdempotencyRecord
from api.models.base import table_of

IdempotencyKey = Annotated[
    str | None,
    Header(
        description="Any unique string (1-255 printable ASCII characters; a UUID is ideal). "
        "Resending the same request with the same key returns the first answer and writes nothing; "
        "the same key with a different request is 422.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
logger = structlog.get_logger("api.idempotency")
_STORED_HEADERS = ("location", "etag")


def _aad(owner_id: uuid.UUID, key: str) -> bytes:
    return associated_data("idempotency_records", "body", key, owner_id)


def fingerprint(method: str, path: str, canonical_body: str) -> bytes:
    return hashlib.sha256(f"{method} {path}\n{canonical_body}".encode()).digest()


def _check_key(key: str) -> None:
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
    _check_key(key)
    claimed = await session.scalar(
        _claim(session.get_bind().dialect.name),
        {"record_owner": owner_id, "record_key": key, "record_fingerprint": request_fingerprint},
    )
    if claimed is None:
        return await _replay(session, owner_id, key, request_fingerprint)
    response = await produce()
    stored = {name: response.headers[name] for name in _STORED_HEADERS if name in response.headers}
    await session.execute(
        _ANSWER,
        {
            "record_owner": owner_id,
            "record_key": key,
            "answer_status": response.status_code,
            "answer_headers": json.dumps(stored),
            # The answer repeats the entry's text: it is kept encrypted like the entry.
            "answer_body": cipher_of(session).encrypt(
                bytes(response.body).decode(), _aad(owner_id, key)
            ),
        },
    )
    return response


# Built once, on the table rather than the mapped class (plain SQL, no ORM machinery): these
# run on every POST that carries a key.
_RECORDS = table_of(IdempotencyRecord)


@functools.cache
def _claim(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    records = _RECORDS
    return (
        insert(records)
        .values(
            owner_id=bindparam("record_owner"),
            key=bindparam("record_key"),
            fingerprint=bindparam("record_fingerprint"),
            status_code=0,
            headers="{}",
            body="",
        )
        .on_conflict_do_nothing(index_elements=[records.c.owner_id, records.c.key])
        .returning(records.c.key)
    )


_ANSWER = (
    update(_RECORDS)
    .where(
        _RECORDS.c.owner_id == bindparam("record_owner"),
        _RECORDS.c.key == bindparam("record_key"),
    )
    .values(
        status_code=bindparam("answer_status"),
        headers=bindparam("answer_headers"),
        body=bindparam("answer_body"),
    )
)


async def _replay(
    session: AsyncSession, owner_id: uuid.UUID, key: str, request_fingerprint: bytes
) -> Response:
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key
        )
    )
    if record is None or record.status_code == 0:
        # Only possible if the first request is still running on a database without row
        # locks for this; the client should simply retry.
        raise Conflict(
            "A request with this Idempotency-Key is still being processed: retry shortly."
        )
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
