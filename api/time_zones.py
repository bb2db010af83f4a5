"""IANA time zone names: the one check for the `tz` query parameter and accounts' time zones."""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field

IANA_HINT = "an IANA time zone name such as `Europe/Berlin`"


# Files some systems keep beside the zones, which available_timezones() then lists: a link to
# the machine's own zone, and a placeholder. Neither names a place.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def is_iana(name: str) -> bool:
    # Only names in the IANA list: ZoneInfo would also take file names such as "localtime".
    return name in _iana_names()


def _iana(name: str) -> str:
    if not is_iana(name):
        raise ValueError(f"must be {IANA_HINT}")
    return name


TimeZoneName = Annotated[
    str,
    Field(max_length=64, examples=["Europe/Berlin"]),
    AfterValidator(_iana),
]
