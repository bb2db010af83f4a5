from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from api.auth import service
from api.auth.dependencies import PasswordsDep, SettingsDep, TokensDep
from api.auth.schemas import JWKS, MAX_FIELD, TokenResponse
from api.database import SessionDep
from api.errors import OAuthError, OAuthProblem, ProblemError, UnsupportedMediaType, problems
from api.journal.idempotency import IdempotencyKey, check_key
from api.ratelimit import client_address
from api.routing import ApiRoute, api_router


class OAuthRoute(ApiRoute):
    """The token endpoints' 415 also carries RFC 6749's `error`, as their other errors do, so an
    OAuth client library that reads `error` finds `invalid_request`."""

    def unsupported_media_type(self, detail: str) -> ProblemError:
        return UnsupportedMediaType(detail, error="invalid_request", error_description=detail)


router = api_router(tags=["auth"], route_class=OAuthRoute)
UNREAD_MEDIA_TYPE = (
    "The body is not form-encoded (`application/x-www-form-urlencoded`): RFC 6749's "
    "`invalid_request`."
)

OptionalField = Annotated[str | None, Form()]


@router.post(
    "/v1/auth/token",
    response_model=TokenResponse,
    responses={
        400: {
            "model": OAuthProblem,
            "description": "RFC 6749 errors (`invalid_request`, `invalid_grant`, "
            "`unsupported_grant_type`), as problem+json with `error` and `error_description`.",
        },
        415: {"model": OAuthProblem, "description": UNREAD_MEDIA_TYPE},
        **problems(413, 422, 429),
    },
)
async def issue_token(
    request: Request,
    session: SessionDep,
    passwords: PasswordsDep,
    tokens: TokensDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(description="`password` or `refresh_token`.")] = None,
    username: Annotated[
        str | None, Form(description="The account's email (password grant).")
    ] = None,
    password: OptionalField = None,
    refresh_token: Annotated[
        str | None, Form(description="The last refresh token (refresh_token grant).")
    ] = None,
    scope: Annotated[
        str | None, Form(description="Ignored: a login token carries its account's role.")
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Sign in with email and password, or exchange a refresh token; form-encoded, as in RFC 6749.

    Each call returns a new access token (15 minutes) and a new refresh token; the refresh
    token presented is used up. Send an `Idempotency-Key` with a refresh: if the answer is
    lost, resending the same refresh token with the same key returns the same new pair. The
    used refresh token sent again without that key, or with another, ends the whole login.
    """
    await request.app.state.limiter.check_password_attempt(client_address(request.scope), username)
    if idempotency_key is not None:
        try:
            check_key(idempotency_key)
        except ProblemError as refused:
            # As every error of this endpoint: with RFC 6749's `error`, for OAuth clients.
            raise OAuthError("invalid_request", refused.detail) from None
    if any(
        value is not None and len(value) > MAX_FIELD
        for value in (username, password, refresh_token)
    ):
        raise OAuthError("invalid_request", "A form field is too long.")
    if grant_type == "password":
        if not username or not password:
            raise OAuthError(
                "invalid_request", "The password grant needs `username` and `password`."
            )
        return await service.password_grant(
            session, passwords, tokens, settings, username, password, idempotency_key
        )
    if grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "The refresh_token grant needs `refresh_token`.")
        return await service.refresh_grant(
            session, tokens, settings, refresh_token, idempotency_key
        )
    if grant_type is None:
        raise OAuthError("invalid_request", "Send `grant_type` as a form field.")
    raise OAuthError(
        "unsupported_grant_type", "`grant_type` must be `password` or `refresh_token`."
    )


@router.post(
    "/v1/auth/revoke",
    response_class=Response,
    responses={
        200: {"description": "Revoked, or there was nothing to revoke."},
        415: {"model": OAuthProblem, "description": UNREAD_MEDIA_TYPE},
        **problems(413, 422),
    },
)
async def revoke_token(
    session: SessionDep,
    tokens: TokensDep,
    token: Annotated[
        str, Form(max_length=MAX_FIELD, description="An access, refresh or read token.")
    ],
    token_type_hint: Annotated[
        str | None, Form(max_length=MAX_FIELD, description="Accepted and not needed.")
    ] = None,
) -> Response:
    """End the login a token belongs to (RFC 7009): its refresh token, every access token and every read token it minted stop working.

    A patient-scoped read token sent here ends that read token alone, at once.

    Answers 200 for unknown or already revoked tokens too, so it tells nothing about them.
    """
    await service.revoke(session, tokens, token)
    return Response(status_code=200)


@router.get("/.well-known/jwks.json", tags=["keys"])
async def get_jwks(request: Request, response: Response) -> JWKS:
    """The public keys (Ed25519, JWS `EdDSA`) that verify our tokens, by `kid`. Cache for up to 5 minutes."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return JWKS.model_validate(request.app.state.tokens.jwks())
