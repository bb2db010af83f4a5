from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict
from typing_extensions import TypedDict

from api.assessments.scoring import (
    DISPLAY_NAME,
    ITEM_COUNT,
    ITEM_MAX,
    Band,
    Instrument,
    InvalidAnswers,
    validate_answers,
)
from api.journal.schemas import EntryCreate, EntryRead, EntryTime
from api.safety_flags.schemas import FlagNotice

ASSESSMENT_EXAMPLE: JsonDict = {
    "id": "fa06f3e4-ed14-4d86-9358-8d399a8ee6d7",
    "private": False,
    "version": 1,
    "created_at": "2026-11-21T07:40:26.330Z",
    "updated_at": "2026-11-21T07:40:26.330Z",
    "clock_adjusted": False,
    "instrument": "phq9",
    "answers": [1, 1, 2, 1, 0, 1, 1, 0, 0],
    "completed_at": "2026-11-21T07:40:00Z",
    "total": 7,
    "band": "mild",
    "safety_flag": False,
    "clusters": None,
    "provisional_positive": None,
    "provisional_diagnosis": None,
    "meets_symptom_pattern": None,
    "screening_result": None,
    "crisis_resources": [],
    "raised_flag": None,
}


class Clusters(TypedDict):
    """PCL-5 items endorsed per DSM-5 symptom cluster."""

    B: int
    C: int
    D: int
    E: int


class CrisisResource(BaseModel):
    name: str
    phone: str | None = None
    text: str | None = None
    url: str | None = None


Answers = Annotated[
    list[Annotated[int, Field(strict=True)]],
    Field(
        max_length=max(ITEM_COUNT.values()),
        description="One integer per item, in order: PHQ-9 9 items 0-3, GAD-7 7 items 0-3, PCL-5 20 items 0-4.",
    ),
]


def _answers_per_instrument(schema: JsonDict) -> None:
    """The answers as the shapes the scoring tables allow: an instrument's number of items, each
    in its range (no two instruments have the same number of items, so an answer list fits one
    shape). The model's validator checks the same against the instrument named, with a message
    that names it."""
    schema["examples"] = [
        {
            "instrument": "phq9",
            "answers": [1, 1, 2, 1, 0, 1, 1, 0, 0],
            "completed_at": "2026-11-21T08:40:00+01:00",
        }
    ]
    properties = schema["properties"]
    assert isinstance(properties, dict)
    answers = properties["answers"]
    assert isinstance(answers, dict)
    answers.pop("items")
    answers.pop("minItems", None)
    answers.pop("maxItems", None)
    answers.pop("type")
    answers["oneOf"] = [
        {
            "title": DISPLAY_NAME[instrument],
            "type": "array",
            "minItems": ITEM_COUNT[instrument],
            "maxItems": ITEM_COUNT[instrument],
            "items": {"type": "integer", "minimum": 0, "maximum": ITEM_MAX[instrument]},
        }
        for instrument in Instrument
    ]


class AssessmentCreate(EntryCreate):
    model_config = ConfigDict(json_schema_extra=_answers_per_instrument)

    instrument: Instrument
    answers: Answers
    completed_at: EntryTime | None = Field(
        default=None, description="When it was answered; default now."
    )

    @model_validator(mode="after")
    def _answers_fit_the_instrument(self) -> Self:
        try:
            validate_answers(self.instrument, self.answers)
        except InvalidAnswers as exc:
            raise ValueError(exc.message) from None
        return self


class AssessmentRead(EntryRead):
    model_config = ConfigDict(json_schema_extra={"examples": [ASSESSMENT_EXAMPLE]})

    instrument: Instrument
    answers: list[int]
    completed_at: datetime
    total: int
    band: Band = Field(
        description="PHQ-9: minimal, mild, moderate, moderately_severe, severe. GAD-7: minimal, mild, "
        "moderate, severe. PCL-5: provisional_positive (total >= 33) or below_threshold."
    )
    safety_flag: bool = Field(
        description="PHQ-9 item 9 answered above 0. Shown with crisis resources."
    )
    clusters: Clusters | None = Field(
        description="PCL-5: endorsed items (answer >= 2) in DSM-5 clusters B, C, D, E; null otherwise."
    )
    provisional_positive: bool | None = Field(description="PCL-5: total >= 33; null otherwise.")
    provisional_diagnosis: bool | None = Field(
        description="Deprecated: the same value as `meets_symptom_pattern`, under an old name "
        "that overclaimed. Kept for v1 clients; the service does not diagnose.",
        json_schema_extra={"deprecated": True},
    )
    meets_symptom_pattern: bool | None = Field(
        default=None,
        description="PCL-5: >= 1 B, >= 1 C, >= 2 D and >= 2 E endorsed (a screening result, "
        "to be confirmed with a clinical interview such as CAPS-5); null otherwise.",
    )
    screening_result: str | None = Field(
        default=None, description="PCL-5: the screening result in words; null otherwise."
    )
    crisis_resources: list[CrisisResource] = Field(
        default=[], description="Where to find help now; present when safety_flag is true."
    )
    raised_flag: FlagNotice | None = Field(
        default=None,
        description="Only in the answer to your own POST: the safety flag this questionnaire "
        "raised (see `GET /v1/me/safety-flags`), and whether any therapist can see it. Null "
        "everywhere else.",
    )
