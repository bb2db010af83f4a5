from __future__ import annotations

from fastapi import Response, status

from api.accounts import service
from api.accounts.schemas import AccountCreate, AccountErase, AccountRead, AccountUpdate
from api.auth.dependencies import CallerDep, PasswordAttemptsDep, PasswordsDep
from api.database import SessionDep
from api.errors import problems
from api.headers import ETAG, LOCATION, sends
from api.preconditions import IfMatch, etag
from api.routing import api_router

router = api_router(prefix="/v1", tags=["accounts"])


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problems(
            403,
            409,
            413,
            422,
            d403="A therapist sign-up without a valid invitation code for this email: nothing was created.",
            d409="An account with this email already exists.",
        ),
        **sends(201, LOCATION, ETAG),
    },
)
async def create_account(
    data: AccountCreate, session: SessionDep, passwords: PasswordsDep, response: Response
) -> AccountRead:
    """Register a patient, or a therapist the operator invited. Emails are trimmed and lower-cased; passwords are 10-128 characters;
    `time_zone` (IANA, default UTC) is where a patient's days begin and end.

    A therapist sends the `invitation_code` from the operator's invitation (7 days, one use, for that email only)
    and is created verified, with the invitation's name (unless `display_name` is given) and clinic.
    """
    account = await service.create_account(session, passwords, data)
    response.headers["Location"] = "/v1/me"
    response.headers["ETag"] = etag(account.version)
    return AccountRead.model_validate(account)


@router.get("/me", responses={**problems(401), **sends(200, ETAG)})
async def get_me(caller: CallerDep, session: SessionDep, response: Response) -> AccountRead:
    """The account the access token belongs to, with its ETag."""
    account = await caller.account(session)
    response.headers["ETag"] = etag(account.version)
    return AccountRead.model_validate(account)


@router.patch(
    "/me",
    responses={**problems(401, 412, 413, 422, 428, 429), **sends(200, ETAG)},
)
async def update_me(
    data: AccountUpdate,
    caller: CallerDep,
    session: SessionDep,
    passwords: PasswordsDep,
    attempts: PasswordAttemptsDep,
    response: Response,
    if_match: IfMatch = None,
) -> AccountRead:
    """Change the display name, the time zone (IANA; your days are counted in it), or the password (with
    `current_password`); a new password signs out every other login."""
    account = await service.update_account(session, passwords, attempts, caller, data, if_match)
    response.headers["ETag"] = etag(account.version)
    return AccountRead.model_validate(account)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(
        401, 403, 413, 422, 429, d403="The password does not match: nothing was erased."
    ),
)
async def erase_me(
    data: AccountErase,
    caller: CallerDep,
    session: SessionDep,
    passwords: PasswordsDep,
    attempts: PasswordAttemptsDep,
) -> Response:
    """Erase your account and everything the service holds about you, at once and for good.

    Send your password again in the body. Every token, grant and entry stops existing; what remains is a record,
    with nothing that identifies you, that an erasure happened. Export first (`GET /v1/me/export`) to keep a copy.
    """
    await service.erase_account(session, passwords, attempts, caller, data.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
