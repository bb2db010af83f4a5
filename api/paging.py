"""Paging, the same on every list: the page size and cursor parameters, and the one parser of a
page cursor a client sends back (``api.journal.cursors`` makes and reads them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query

from api.errors import BadRequest
from api.journal.cursors import InvalidCursor, decode_cursor

Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1-200.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` from the previous page.")
]

INVALID_CURSOR = "`cursor` is not valid: pass the `next_cursor` of the previous page."


def after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Where the page sent as ``cursor`` starts (None: the first page); 400 for a cursor this
    service did not make (an empty one included: the last page's ``next_cursor`` is null)."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except InvalidCursor:
        raise BadRequest(INVALID_CURSOR) from None
