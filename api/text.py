"""Text that every database can store and give back byte for byte.

PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates; other C0 control characters
have no place in what a person writes. Tab, line feed and carriage return are kept.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def is_storable(value: str) -> bool:
    return _UNSTORABLE.search(value) is None


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


# Compose with a length: ``Annotated[StorableStr, Field(max_length=...)]``.
StorableStr = Annotated[str, AfterValidator(_storable)]

DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True),
    AfterValidator(_storable),
]
