from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.assessments.schemas import AssessmentCreate, AssessmentRead, CrisisResource
from api.assessments.scoring import score, screening_words
from api.journal.repository import Entry, Scope
from api.journal.resource import Resource, WriteContext
from api.journal.schemas import EntryRead
from api.models import Assessment
from api.safety_flags import service as safety_flags
from api.settings import Settings


async def prepare(_context: WriteContext, values: dict[str, Any]) -> dict[str, Any]:
    result = score(values["instrument"], values["answers"])
    return {
        **values,
        "total": result.total,
        "band": result.band,
        "safety_flag": result.safety_flag,
        "clusters": result.clusters,
        "provisional_positive": result.provisional_positive,
        "provisional_diagnosis": result.provisional_diagnosis,
    }


def present(resource: Resource, entry: Entry, settings: Settings) -> EntryRead:
    read = AssessmentRead.model_validate(entry)
    read.meets_symptom_pattern = read.provisional_diagnosis
    read.screening_result = screening_words(read.provisional_diagnosis)
    if read.safety_flag:
        read.crisis_resources = [
            CrisisResource.model_validate(r) for r in settings.crisis_resources
        ]
    return read


async def answer_create(
    session: AsyncSession, scope: Scope, entry: Entry, shown: EntryRead
) -> EntryRead:
    assert isinstance(shown, AssessmentRead)
    shown.raised_flag = await safety_flags.notice(session, scope, entry)
    return shown


ASSESSMENTS = Resource(
    name="assessments",
    singular="assessment",
    noun="assessment",
    nouns="questionnaires",
    label="Questionnaire",
    description="PHQ-9, GAD-7 and PCL-5, scored by the server. Never edited.",
    model=Assessment,
    create=AssessmentCreate,
    update=None,
    read=AssessmentRead,
    prepare=prepare,
    present=present,
    created=safety_flags.raise_on_receipt,
    answer_create=answer_create,
)
