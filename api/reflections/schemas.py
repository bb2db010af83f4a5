from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from api.journal.schemas import EntryCreate, EntryRead, EntryTime, EntryUpdate
from api.text import StorableStr

ReflectionText = Annotated[
    StorableStr, Field(min_length=1, max_length=20000, description="Up to 20,000 characters.")
]
Emotion = Annotated[
    StorableStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
]


def _unique(values: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(values)) != len(values):
        raise ValueError("must not name the same intention twice")
    return values


class PromptAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[StorableStr, Field(min_length=1, max_length=500)]
    answer: Annotated[StorableStr, Field(max_length=5000)]


Prompts = Annotated[
    list[PromptAnswer], Field(max_length=20, description="Up to 20 prompt/answer pairs.")
]
Emotions = Annotated[
    list[Emotion], Field(max_length=20, description="Up to 20 tags of 1-40 characters.")
]
IntentionIds = Annotated[
    list[uuid.UUID],
    Field(max_length=20, description="Up to 20 of your intentions this reflection revisits."),
    AfterValidator(_unique),
]


REFLECTION_EXAMPLE: JsonDict = {
    "id": "05fafb8a-d42c-4878-80ea-77ed02abd081",
    "private": False,
    "version": 1,
    "created_at": "2026-11-20T18:42:40.907Z",
    "updated_at": "2026-11-20T18:42:40.907Z",
    "clock_adjusted": False,
    "text": "A wide open feeling, then tiredness. I was kinder to myself than I expected.",
    "session_id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
    "prompts": [{"prompt": "What surprised you?", "answer": "How calm it was."}],
    "emotions": ["calm", "tender"],
    "intention_ids": ["3a922d48-d0bb-444d-85c1-33a2d269af5b"],
    "written_at": "2026-11-20T18:40:00Z",
}


class ReflectionCreate(EntryCreate):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "A wide open feeling, then tiredness. I was kinder to myself than I expected.",
                    "session_id": "89e82e70-28e7-44f9-98f3-5fcf96b2a491",
                    "prompts": [{"prompt": "What surprised you?", "answer": "How calm it was."}],
                    "emotions": ["calm", "tender"],
                    "intention_ids": ["3a922d48-d0bb-444d-85c1-33a2d269af5b"],
                }
            ]
        }
    )

    text: ReflectionText
    session_id: uuid.UUID | None = Field(default=None, description="One of your dosing sessions.")
    prompts: Prompts = Field(default_factory=list)
    emotions: Emotions = Field(default_factory=list)
    intention_ids: IntentionIds = Field(default_factory=list)
    written_at: EntryTime | None = Field(
        default=None, description="When it was written; default now."
    )


class ReflectionUpdate(EntryUpdate):
    model_config = ConfigDict(json_schema_extra={"examples": [{"emotions": ["calm", "hopeful"]}]})

    not_null = frozenset({"private", "text", "prompts", "emotions", "intention_ids", "written_at"})

    text: ReflectionText | None = None
    session_id: uuid.UUID | None = None
    prompts: Prompts | None = None
    emotions: Emotions | None = None
    intention_ids: IntentionIds | None = None
    written_at: EntryTime | None = None


class ReflectionRead(EntryRead):
    model_config = ConfigDict(json_schema_extra={"examples": [REFLECTION_EXAMPLE]})

    text: str
    session_id: uuid.UUID | None
    prompts: list[PromptAnswer]
    emotions: list[str]
    intention_ids: list[uuid.UUID]
    written_at: datetime
