"""The closed sets the spec declares as enums are the sets the code produces.

Each ``Literal`` of the API's schemas is written out (a type checker and the spec need it
spelled), so each is checked here against where its values come from: a value the code can
produce but the enum lacks would be a 500 on the way out, and a value the enum has that nothing
produces is a promise the server does not keep.
"""

from __future__ import annotations

from typing import get_args

from api.assessments import scoring
from api.audit.schemas import AuditAction, AuditResource
from api.audit.service import NOUNS
from api.journal.schemas import ResourceName
from api.resources import RESOURCES
from api.summary.calculations import AFTER_WINDOWS
from api.summary.schemas import WindowName


def flat(literal: object) -> set[str]:
    values: set[str] = set()
    for arg in get_args(literal):
        values |= flat(arg) if get_args(arg) else {arg}
    return values


def test_resource_names_are_the_registry() -> None:
    assert flat(ResourceName) == {resource.name for resource in RESOURCES}


def answers_totalling(instrument: scoring.Instrument, total: int) -> list[int]:
    top, count = scoring.ITEM_MAX[instrument], scoring.ITEM_COUNT[instrument]
    return [max(0, min(top, total - top * item)) for item in range(count)]


def test_bands_are_every_band_scoring_can_give() -> None:
    given = {
        scoring.score(instrument, answers_totalling(instrument, total)).band
        for instrument in scoring.Instrument
        for total in range(scoring.ITEM_MAX[instrument] * scoring.ITEM_COUNT[instrument] + 1)
    }
    assert flat(scoring.Band) == given


def test_window_names_are_the_windows_the_summary_makes() -> None:
    assert flat(WindowName) == {"before", "during"} | {name for name, _, _ in AFTER_WINDOWS}


def test_audit_resources_cover_every_kind_the_log_can_name() -> None:
    resources = flat(AuditResource)
    assert {resource.name for resource in RESOURCES} <= resources
    # Every noun the access log's wording knows is a resource the schema admits, and back.
    assert set(NOUNS) | {"summary", "patients"} == resources
    assert flat(AuditAction) == {"list", "read", "summary", "acknowledge", "open"}
