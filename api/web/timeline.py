"""One timeline from several kinds of entry: pages merged newest first, keyset paged. Pure.

Each kind is read a page at a time through its own scoped list (``read_page``, as the API
reads it), all from the same cursor: the (time, id) of the last entry shown. The pages are
merged by (time, id), newest first, and cut to the page size; whatever was read and not shown
comes again on the next page, which starts strictly after the last entry shown. So a page costs
the same however long the history, and entries added meanwhile cannot shift the pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.journal.cursors import encode_cursor


@dataclass(frozen=True)
class Item:
    kind: str  # a resource name: "reflections"
    at: datetime
    id: uuid.UUID
    entry: Any  # the entry as the API presents it (its read schema)


@dataclass(frozen=True)
class KindPage:
    kind: str
    items: list[Item]
    more: bool  # the kind has entries past this page


@dataclass(frozen=True)
class Timeline:
    items: list[Item]
    older: str | None  # the cursor of the next page, None at the end


def merge(pages: Sequence[KindPage], limit: int) -> Timeline:
    """The newest ``limit`` items of all pages, and a cursor when anything older remains."""
    candidates = sorted(
        (item for page in pages for item in page.items),
        key=lambda item: (item.at, item.id),
        reverse=True,
    )
    shown = candidates[:limit]
    more = len(candidates) > limit or any(page.more for page in pages)
    older = encode_cursor(shown[-1].at, shown[-1].id) if more and shown else None
    return Timeline(items=shown, older=older)
