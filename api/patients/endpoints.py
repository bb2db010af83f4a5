"""What a therapist reads: the patients who shared with them, and what each shared, read only.

No `from __future__ import annotations` here: the generated routes annotate with dependencies
built per resource, which FastAPI must see as objects, not as names to look up.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from api.audit.repository import record_seen
from api.auth.dependencies import SettingsDep, TherapistDep
from api.database import SessionDep
from api.errors import NotFound, problems
from api.grants.repository import GrantRepository
from api.journal import service
from api.journal.pages import PageQuery, page_model, page_query
from api.journal.references import hide_unseen_references
from api.journal.resource import Resource
from api.models import AuditOutcome, ReadScope
from api.models.base import utcnow
from api.patients.access import ReadAccess, Reader, require
from api.patients.reads import reader_of, shared_page
from api.routing import api_router
from api.safety_flags.repository import FLAG_SCOPES, OpenFlags, flag_counts
from api.serialization import json_response
from api.summary.endpoints import Days, Tz, parse_tz
from api.summary.schemas import Summary
from api.summary.service import build_summary, time_zone_of

READ_ERRORS = problems(
    400,
    401,
    403,
    404,
    422,
    d401="No valid read token, or its grant was revoked or has expired.",
    d403='The token lacks the scope this route needs (`WWW-Authenticate: Bearer error="insufficient_scope"`).',
    d404="No such patient for this token, or no such entry (private entries do not exist here).",
)


class SharedPatient(BaseModel):
    patient_id: uuid.UUID
    display_name: str
    grant_id: uuid.UUID
    scopes: list[ReadScope]
    expires_at: datetime
    open_safety_flags: int | None = Field(
        default=None,
        description="Open safety flags on shared questionnaires; null when this grant carries "
        "neither `assessments:read` nor `summary:read`.",
    )


class SharedPatients(BaseModel):
    items: list[SharedPatient]


async def list_patients(
    request: Request, caller: TherapistDep, session: SessionDep
) -> SharedPatients:
    """Patients with an active grant to you (therapist login token), with the scopes each granted and their open
    safety flags: patients with open flags come first.

    Each patient listed sees it in their access log.
    """
    rows = await GrantRepository(session, caller.id, caller.role).active_patients(utcnow())
    await record_seen(
        session,
        request.state.request_id,
        caller.id,
        [(row.grant.patient_id, row.grant.id) for row in rows],
        "patients",
        "list",
    )
    counts = await flag_counts(session, [row.grant for row in rows])
    items = [
        SharedPatient(
            patient_id=row.grant.patient_id,
            display_name=row.patient_name,
            grant_id=row.grant.id,
            scopes=row.grant.scopes,
            expires_at=row.grant.expires_at,
            open_safety_flags=_open_count(counts[row.grant.patient_id], row.grant.scopes),
        )
        for row in rows
    ]
    # Stable: within each group, the order stays by name.
    items.sort(key=lambda item: 0 if item.open_safety_flags else 1)
    return SharedPatients(items=items)


def _open_count(flags: OpenFlags | None, scopes: list[str]) -> int | None:
    """The count this grant may show: None when it carries neither flag scope."""
    if flags is None or not any(scope.value in scopes for scope in FLAG_SCOPES):
        return None
    return flags.open_count


def add_read_routes(router: APIRouter, resource: Resource) -> None:
    needed = resource.scope

    async def list_shared(
        request: Request,
        patient_id: uuid.UUID,
        session: SessionDep,
        settings: SettingsDep,
        reader: Annotated[Reader, Depends(reader_of(resource, "list"))],
        query: Annotated[PageQuery, Depends(page_query(resource))],
    ) -> Response:
        page = await shared_page(request, session, reader, patient_id, resource, settings, query)
        return json_response(page)

    router.add_api_route(
        f"/{{patient_id}}/{resource.name}",
        list_shared,
        methods=["GET"],
        name=f"list_shared_{resource.name}",
        response_model=page_model(resource),
        summary=f"List a patient's shared {resource.name}",
        description=f"The patient's {resource.noun} entries you may read (`{needed.value}`), newest first, with the "
        "same filters and pages as the patient's own list. Private entries never appear.",
        responses=READ_ERRORS,
    )

    async def get_shared(
        entry_id: uuid.UUID,
        settings: SettingsDep,
        access: Annotated[ReadAccess, Depends(require(needed, resource.name, "read"))],
    ) -> Response:
        entry = await service.entry_or_none(access.session, resource, access.scope, entry_id)
        if entry is None:
            raise await access.refuse(
                AuditOutcome.NOT_FOUND, NotFound(f"No {resource.noun} with this id.")
            )
        shown = resource.present(resource, entry, settings)
        await hide_unseen_references(access.session, access.scope, [shown])
        await access.allowed([entry.id])
        return json_response(shown)

    router.add_api_route(
        f"/{{patient_id}}/{resource.name}/{{entry_id}}",
        get_shared,
        methods=["GET"],
        name=f"get_shared_{resource.singular}",
        response_model=resource.read,
        summary=f"Read a patient's shared {resource.noun}",
        description=f"One {resource.noun} (`{needed.value}`). A private entry answers as one that does not exist.",
        responses=READ_ERRORS,
    )


async def get_patient_summary(
    settings: SettingsDep,
    access: Annotated[ReadAccess, Depends(require(ReadScope.SUMMARY, "summary", "summary"))],
    days: Days = 30,
    tz: Tz = None,
) -> Summary:
    """The patient's summary computed from shared entries only (`summary:read`; `shared_only` is true), in the
    patient's own days (their account's time zone) unless `tz` is given."""
    zone = tz if tz is not None else await time_zone_of(access.session, access.patient_id)
    summary = await build_summary(
        access.session,
        access.scope,
        settings,
        days=days,
        tz=parse_tz(zone),
        tz_name=zone,
        now=utcnow(),
    )
    await access.allowed([], count=0)
    return summary


def build_router(resources: Iterable[Resource]) -> APIRouter:
    """The therapist's routes: the patients list, each resource's shared reads, the summary."""
    router = api_router(prefix="/v1/patients", tags=["therapist"])
    router.add_api_route("", list_patients, methods=["GET"], responses=problems(401, 403))
    for resource in resources:
        add_read_routes(router, resource)
    router.add_api_route(
        "/{patient_id}/summary", get_patient_summary, methods=["GET"], responses=READ_ERRORS
    )
    return router
