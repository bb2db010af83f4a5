from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response, status

from api.auth.dependencies import Caller, only
from api.database import SessionDep
from api.errors import problems
from api.journal import idempotency
from api.models import Role
from api.pairing import service
from api.pairing.schemas import PairingCodeRead, PairingPreview
from api.ratelimit import client_address
from api.routing import api_router
from api.serialization import json_response

router = api_router(prefix="/v1/pairing-codes", tags=["grants"])
PairingTherapistDep = Annotated[
    Caller,
    Depends(
        only(Role.THERAPIST, "Only a therapist makes pairing codes; a patient grants with one.")
    ),
]
PairingPatientDep = Annotated[
    Caller,
    Depends(only(Role.PATIENT, "Only a patient uses a pairing code; a therapist makes them.")),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PairingCodeRead,
    responses=problems(
        400, 401, 403, 422, d403="Not a therapist, or not verified by the operator."
    ),
)
async def create_pairing_code(
    caller: PairingTherapistDep,
    session: SessionDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Response:
    """Make a pairing code to give a patient (therapist login token; verified therapists only).

    The patient previews it (`GET /v1/pairing-codes/{code}`) and grants with it (`POST /v1/grants` with
    `pairing_code`). It works once, for 10 minutes.
    """

    async def produce() -> Response:
        return json_response(await service.create_code(session, caller), 201)

    fingerprint = idempotency.fingerprint("POST", router.prefix, "")
    return await idempotency.once(session, caller.id, idempotency_key, fingerprint, produce)


@router.get(
    "/{code}",
    responses=problems(
        401,
        403,
        404,
        422,
        429,
        d403="Only patients use pairing codes.",
        d404="No such code waiting: never made, mistyped, used or expired (one answer for all).",
    ),
)
async def preview_pairing_code(
    code: Annotated[str, Path(max_length=64, examples=["K7QP-4XM9-2RTD"])],
    request: Request,
    caller: PairingPatientDep,
    session: SessionDep,
) -> PairingPreview:
    """Who a pairing code would share your journal with: the therapist's verified name and clinic, nothing else.

    Case and dashes do not matter. Lookups are limited per patient and per address (429 with Retry-After).
    """
    await request.app.state.limiter.check_pairing_lookup(
        client_address(request.scope), str(caller.id)
    )
    return await service.preview(session, code)
