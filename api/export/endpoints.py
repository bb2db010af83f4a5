from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response

from api.auth.dependencies import Caller, SettingsDep, only
from api.database import SessionDep
from api.errors import problems
from api.export import fhir
from api.export.schemas import FHIR_BUNDLE_SCHEMA, JournalExport
from api.export.service import gather
from api.headers import CONTENT_DISPOSITION, header_refs
from api.models import Role
from api.routing import api_router
from api.serialization import json_bytes

router = api_router(prefix="/v1/me", tags=["privacy"])
FHIR_JSON = "application/fhir+json"
ExporterDep = Annotated[
    Caller,
    Depends(
        only(Role.PATIENT, "Exports are of a patient's journal; a therapist account holds none.")
    ),
]


@router.get(
    "/export",
    response_model=JournalExport,
    responses={
        200: {
            "content": {FHIR_JSON: {"schema": FHIR_BUNDLE_SCHEMA}},
            "headers": header_refs(CONTENT_DISPOSITION),
        },
        **problems(401, 403, 422),
    },
)
async def export_me(
    caller: ExporterDep,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["json", "fhir"],
        Query(
            description="`json` (everything, as this API shows it) or `fhir` (a FHIR R4 Bundle of the journal)."
        ),
    ] = "json",
) -> Response:
    """Your own copy of everything the service holds about you: account, journal (private entries included),
    scored questionnaires, grants and the access log. `format=fhir` gives the journal as a FHIR R4 Bundle an EHR
    can take."""
    export = await gather(session, caller, settings)
    headers = {
        CONTENT_DISPOSITION: f'attachment; filename="journal-{export.exported_at:%Y%m%d}.json"'
    }
    if format == "fhir":
        bundle: dict[str, Any] = fhir.to_bundle(export)
        return Response(json_bytes(bundle), media_type=FHIR_JSON, headers=headers)
    return Response(export.model_dump_json(), media_type="application/json", headers=headers)
