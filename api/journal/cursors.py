"""Opaque page cursors: the (time, id) of the last row a page returned. Pure functions."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime


class InvalidCursor(ValueError):
    pass


def encode_cursor(at: datetime, entry_id: uuid.UUID) -> str:
    raw = f"{at.astimezone(UTC).isoformat()}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text = raw.split("|")
        at = datetime.fromisoformat(at_text)
        entry_id = uuid.UUID(id_text)
        if at.tzinfo is None:
            raise ValueError("no zone")
        # In UTC, as the service wrote it: a forged offset near year 1 or 9999 overflows here,
        # and is refused like any other cursor the service did not make.
        at = at.astimezone(UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise InvalidCursor("not a cursor this service made") from exc
    return at, entry_id


def decode_sequence(cursor: str) -> int:
    """A sync cursor is the owner's change sequence number, as a decimal string."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise InvalidCursor("a sync cursor is the `next_cursor` of an earlier sync, or 0")
    return int(cursor)
