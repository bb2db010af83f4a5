from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from api.assessments.scoring import Instrument, InvalidAnswers, validate_answers
from api.journal.schemas import EntryCreate, EntryRead, EntryTime


class CrisisResource(BaseModel):
    name: str
    phone: str | None = None
    text: str | None = None
    url: str | None = None


Answers = Annotated[
    list[Annotated[int, Field(strict=True)]],
    Field(
        max_length=20,
        description="One integer per item, in order: PHQ-9 9 items 0-3, GAD-7 7 items 0-3, PCL-5 20 items 0-4.",
    ),
]


class AssessmentCreate(EntryCreate):
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
    instrument: Instrument
    answers: list[int]
    completed_at: datetime
    total: int
    band: str = Field(
        description="PHQ-9: minimal, mild, moderate, moderately_severe, severe. GAD-7: minimal, mild, "
        "moderate, severe. PCL-5: provisional_positive (total >= 33) or below_threshold."
    )
    safety_flag: bool = Field(
        description="PHQ-9 item 9 answered above 0. Shown with crisis resources."
    )
    clusters: dict[str, int] | None = Field(
        description="PCL-5: endorsed items (answer >= 2) in DSM-5 clusters B, C, D, E; null otherwise."
    )
    provisional_positive: bool | None = Field(description="PCL-5: total >= 33; null otherwise.")
    provisional_diagnosis: bool | None = Field(
        description="PCL-5: >= 1 B, >= 1 C, >= 2 D and >= 2 E endorsed; null otherwise."
    )
    crisis_resources: list[CrisisResource] = Field(
        default=[], description="Where to find help now; present when safety_flag is true."
    )
