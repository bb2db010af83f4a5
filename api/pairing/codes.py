"""Pairing codes as text: made, typed back by a person, normalised, hashed. No I/O."""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Annotated

from pydantic import Field

# No 0/O, 1/I/L or U: nothing a person reading it aloud or typing it can confuse.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS, GROUP_LENGTH = 3, 4
LENGTH = GROUPS * GROUP_LENGTH
BITS = LENGTH * math.log2(len(ALPHABET))  # about 58.9
_SEPARATORS = str.maketrans("", "", "- \t")

PairingCodeText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        examples=["K7QP-4XM9-2RTD"],
        description="A pairing code as the therapist gave it; case and dashes do not matter.",
    ),
]


def new_code() -> str:
    """A fresh code such as ``K7QP-4XM9-2RTD``, from the system's secure random source."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(chars[i : i + GROUP_LENGTH] for i in range(0, LENGTH, GROUP_LENGTH))


def normalize(text: str) -> str | None:
    """The code as it is stored (upper case, no dashes or spaces), or None when the text cannot
    be one."""
    code = text.translate(_SEPARATORS).upper()
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


def hash_code(normalized: str) -> bytes:
    return hashlib.sha256(normalized.encode("ascii")).digest()
