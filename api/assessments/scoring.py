"""Scoring of the PHQ-9, GAD-7 and PCL-5 questionnaires.

The service scores and shows; it never diagnoses. "Provisional" PCL-5 results are screening
signals defined by the instrument's authors, reported as such.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Instrument(StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"
    PCL5 = "pcl5"


DISPLAY_NAME: dict[Instrument, str] = {
    Instrument.PHQ9: "PHQ-9",
    Instrument.GAD7: "GAD-7",
    Instrument.PCL5: "PCL-5",
}

ITEM_COUNT: dict[Instrument, int] = {
    Instrument.PHQ9: 9,
    Instrument.GAD7: 7,
    Instrument.PCL5: 20,
}

ITEM_MAX: dict[Instrument, int] = {
    Instrument.PHQ9: 3,
    Instrument.GAD7: 3,
    Instrument.PCL5: 4,
}

# Every band name below, as a closed set for the API (tests/unit/test_closed_sets.py checks it).
Band = Literal[
    "minimal",
    "mild",
    "moderate",
    "moderately_severe",
    "severe",
    "provisional_positive",
    "below_threshold",
]

# Each band is (highest total in the band, name); the lowest total of a band is one above the
# previous band's highest, so the table cannot leave gaps or overlaps.
_BANDS: dict[Instrument, tuple[tuple[int, str], ...]] = {
    Instrument.PHQ9: (
        (4, "minimal"),
        (9, "mild"),
        (14, "moderate"),
        (19, "moderately_severe"),
        (27, "severe"),
    ),
    Instrument.GAD7: (
        (4, "minimal"),
        (9, "mild"),
        (14, "moderate"),
        (21, "severe"),
    ),
}

# PHQ-9 item 9 asks about thoughts of self-harm; any answer above "not at all" is flagged.
PHQ9_SAFETY_ITEM = 9

PCL5_POSITIVE_TOTAL = 33
PCL5_ENDORSED_ANSWER = 2
PCL5_POSITIVE_BAND = "provisional_positive"
PCL5_NEGATIVE_BAND = "below_threshold"

# 1-based item numbers, inclusive, as the DSM-5 symptom clusters are published.
_PCL5_CLUSTER_ITEMS: dict[str, tuple[int, int]] = {
    "B": (1, 5),
    "C": (6, 7),
    "D": (8, 14),
    "E": (15, 20),
}
_PCL5_CLUSTER_MINIMUM: dict[str, int] = {"B": 1, "C": 1, "D": 2, "E": 2}

_REMISSION_BELOW: dict[Instrument, int] = {
    Instrument.PHQ9: 5,
    Instrument.GAD7: 5,
}


class InvalidAnswers(ValueError):
    """The answers cannot be scored; `message` is safe to show to the person who sent them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Score:
    instrument: Instrument
    total: int
    band: str
    safety_flag: bool
    clusters: dict[str, int] | None = None
    provisional_positive: bool | None = None
    provisional_diagnosis: bool | None = None


def validate_answers(instrument: Instrument, answers: Sequence[int]) -> None:
    expected = ITEM_COUNT[instrument]
    if len(answers) != expected:
        name = DISPLAY_NAME[instrument]
        raise InvalidAnswers(f"{name} needs {expected} answers, got {len(answers)}")
    highest = ITEM_MAX[instrument]
    for number, answer in enumerate(answers, start=1):
        if not _is_answer(answer, highest):
            raise InvalidAnswers(f"answer {number} must be an integer from 0 to {highest}")


def _is_answer(value: object, highest: int) -> bool:
    # bool is a subclass of int, but True/False in a payload is a client bug, not a score.
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return 0 <= value <= highest


def score(instrument: Instrument, answers: Sequence[int]) -> Score:
    validate_answers(instrument, answers)
    total = sum(answers)
    if instrument is Instrument.PCL5:
        return _score_pcl5(answers, total)
    return Score(
        instrument=instrument,
        total=total,
        band=_band(instrument, total),
        safety_flag=instrument is Instrument.PHQ9 and answers[PHQ9_SAFETY_ITEM - 1] > 0,
    )


def band_of(instrument: Instrument, total: int) -> str:
    """The band a total falls in, as ``score`` names it (PCL-5: positive or below threshold)."""
    if instrument is Instrument.PCL5:
        return PCL5_POSITIVE_BAND if total >= PCL5_POSITIVE_TOTAL else PCL5_NEGATIVE_BAND
    return _band(instrument, total)


def _band(instrument: Instrument, total: int) -> str:
    for highest, name in _BANDS[instrument]:
        if total <= highest:
            return name
    raise ValueError(f"{DISPLAY_NAME[instrument]} total {total} is out of range")


def _score_pcl5(answers: Sequence[int], total: int) -> Score:
    clusters = {
        cluster: _endorsed_count(answers, first, last)
        for cluster, (first, last) in _PCL5_CLUSTER_ITEMS.items()
    }
    positive = total >= PCL5_POSITIVE_TOTAL
    diagnosis = all(
        clusters[cluster] >= minimum for cluster, minimum in _PCL5_CLUSTER_MINIMUM.items()
    )
    return Score(
        instrument=Instrument.PCL5,
        total=total,
        band=PCL5_POSITIVE_BAND if positive else PCL5_NEGATIVE_BAND,
        safety_flag=False,
        clusters=clusters,
        provisional_positive=positive,
        provisional_diagnosis=diagnosis,
    )


def _endorsed_count(answers: Sequence[int], first: int, last: int) -> int:
    return sum(1 for answer in answers[first - 1 : last] if answer >= PCL5_ENDORSED_ANSWER)


def screening_words(meets_pattern: bool | None) -> str | None:
    """A PCL-5 symptom-pattern result in words that screen and do not diagnose (National Center
    for PTSD, "Using the PCL-5": a provisional result to be confirmed by a structured clinical
    interview such as the CAPS-5)."""
    if meets_pattern is None:
        return None
    if meets_pattern:
        return "Meets the PCL-5 symptom pattern; confirm with a clinical interview such as CAPS-5."
    return "Does not meet the PCL-5 symptom pattern."


def meets_response(baseline_total: int, latest_total: int) -> bool:
    """True when the latest total is at most half the baseline (a drop of at least 50%).

    A baseline of 0 has nothing to drop from, so it never shows response.
    """
    if baseline_total <= 0:
        return False
    # Integer arithmetic so that exactly 50% is not lost to float rounding.
    return latest_total * 2 <= baseline_total


def in_remission(instrument: Instrument, total: int) -> bool | None:
    """Remission for PHQ-9 and GAD-7; None for PCL-5, which has no remission rule."""
    threshold = _REMISSION_BELOW.get(instrument)
    if threshold is None:
        return None
    return total < threshold
