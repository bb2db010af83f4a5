from __future__ import annotations

from typing import Any

from api.assessments.schemas import AssessmentCreate, AssessmentRead, CrisisResource
from api.assessments.scoring import score
from api.journal.repository import Entry
from api.journal.resource import Resource, WriteContext
from api.journal.schemas import EntryRead
from api.models import Assessment
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
    if read.safety_flag:
        read.crisis_resources = [
            CrisisResource.model_validate(r) for r in settings.crisis_resources
        ]
    return read


ASSESSMENTS = Resource(
    name="assessments",
    singular="assessment",
    noun="assessment",
    model=Assessment,
    create=AssessmentCreate,
    update=None,
    read=AssessmentRead,
    prepare=prepare,
    present=present,
)
