from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Form, Request, Response, status

from api.audit.repository import record_seen
from api.auth.dependencies import Caller, CallerDep, TokensDep, only
from api.database import SessionDep
from api.errors import problems
from api.grants import service
from api.grants.schemas import GrantCreate, GrantPage, GrantRead, ReadTokenResponse
from api.headers import LOCATION, sends
from api.journal import idempotency
from api.models import Role
from api.paging import Cursor, Limit
from api.ratelimit import client_address
from api.routing import api_router
from api.serialization import json_response

router = api_router(prefix="/v1/grants", tags=["grants"])
SharerDep = Annotated[
    Caller, Depends(only(Role.PATIENT, "Only a patient can share their journal."))
]
GrantHolderDep = Annotated[
    Caller, Depends(only(Role.THERAPIST, "Only the therapist a grant was given to can use it."))
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=GrantRead,
    responses={
        **problems(
            400,
            401,
            403,
            404,
            413,
            422,
            429,
            d403="Only patients give grants.",
            d404="No such pairing code waiting: never made, mistyped, used or expired (one answer for all).",
            d429="Too many pairing codes tried: wait for Retry-After.",
        ),
        **sends(201, LOCATION),
    },
)
async def create_grant(
    data: GrantCreate,
    request: Request,
    caller: SharerDep,
    session: SessionDep,
    idempotency_key: idempotency.IdempotencyKey = None,
) -> Response:
    """Share your journal with a verified therapist: which kinds of data, until when (default 90 days, at most 365).

    Name the therapist by the `pairing_code` they gave you (preview it first with `GET /v1/pairing-codes/{code}`),
    or by `therapist_email`: any email that is not a verified therapist's answers the same 422. The therapist then
    mints short-lived read tokens from this grant. Revoke it at any time with DELETE.
    """
    if data.pairing_code is not None:
        # Before the replay check too: a resent guess is still a guess.
        await request.app.state.limiter.check_pairing_lookup(
            client_address(request.scope), str(caller.id)
        )

    async def produce() -> Response:
        grant = await service.create_grant(session, caller, data)
        return json_response(grant, 201, {"Location": f"/v1/grants/{grant.id}"})

    fingerprint = idempotency.fingerprint("POST", router.prefix, data.model_dump_json())
    return await idempotency.once(session, caller.id, idempotency_key, fingerprint, produce)


@router.get("", responses=problems(400, 401, 422))
async def list_grants(
    caller: CallerDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> GrantPage:
    """Grants you gave (patient) or received (therapist), newest first, each with its state."""
    items, next_cursor = await service.list_grants(session, caller, limit, cursor)
    return GrantPage(items=items, next_cursor=next_cursor)


@router.get("/{grant_id}", responses=problems(401, 404, 422))
async def get_grant(grant_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> GrantRead:
    """One grant you gave or received."""
    return await service.get_grant(session, caller, grant_id)


@router.delete(
    "/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 404, 422),
)
async def revoke_grant(grant_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> Response:
    """End a grant now: the patient revokes it, or the therapist gives it up. Every token minted from it stops
    working on its next request. Ending an ended grant changes nothing.

    No If-Match here: withdrawing consent must never fail for a stale copy.
    """
    await service.end_grant(session, caller, grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{grant_id}/token",
    responses=problems(
        400,
        401,
        403,
        404,
        413,
        422,
        d403="Not a therapist, the grant is expired or revoked, or `scope` asks for more than it holds.",
    ),
)
async def mint_read_token(
    request: Request,
    grant_id: uuid.UUID,
    caller: GrantHolderDep,
    session: SessionDep,
    tokens: TokensDep,
    scope: Annotated[
        str | None,
        Form(
            max_length=200,
            description="Space-separated subset of the grant's scopes; default all of them.",
        ),
    ] = None,
) -> ReadTokenResponse:
    """Exchange a grant you received for a patient-scoped read token (at most 15 minutes, never past the grant).

    Form-encoded. The token works only on `/v1/patients/{patient_id}/...`, for the scopes it names.
    The patient's access log shows that you opened their journal.
    """
    minted = await service.mint_read_token(session, tokens, caller, grant_id, scope)
    await record_seen(
        session,
        request.state.request_id,
        caller.id,
        [(minted.patient_id, minted.grant_id)],
        "grant",
        "open",
    )
    return minted
