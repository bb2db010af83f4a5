"""RFC 9457 problem details: the one shape of every 4xx and 5xx this service sends.

Handlers raise a ``ProblemError`` subclass; the exception handlers below turn it, and FastAPI's
and Starlette's own errors, into ``application/problem+json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import asyncpg
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from api.logs import exception_summary
from api.serialization import json_bytes

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = structlog.get_logger("api.errors")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is: body, query, path or header, then the field."
    )
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="A URI reference naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a person to read.")


class ValidationProblem(Problem):
    errors: list[ValidationIssue]


class StaleProblem(Problem):
    """A 412 of an edit or delete made against an older version: with the entry as it is now."""

    current: dict[str, Any] = Field(
        description="The entry as it is now, as its GET answers it: merge, then retry with its "
        "`version` as the ETag."
    )


class OAuthProblem(Problem):
    """A token-endpoint error: a problem that also carries RFC 6749's ``error`` members."""

    error: str
    error_description: str


# Why a request was answered 429 or 503, for the metrics (``api.metrics``): noted in the
# request's state where the answer is decided, counted once with the answer. A closed set, so
# that no label can carry anything a client sent.
Refusal = Literal[
    "rate-limit",  # a budget of the rate limiter (per token, address, account, pairing)
    "per-caller",  # one caller's requests in flight on this node (api.middleware.Gate)
    "busy",  # no request slot free within the wait (api.middleware.Gate)
    "draining",  # /readyz after SIGTERM
    "database-unreachable",
    "database-busy",  # no pooled connection free within the pool timeout
    "database-locked",
    "database-statement-timeout",
    "database-conflict",
]
REFUSAL_CAUSES: frozenset[str] = frozenset(get_args(Refusal))


def note_refusal(scope: Scope, cause: Refusal) -> None:
    scope.setdefault("state", {})["refusal"] = cause


class ProblemError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    slug: ClassVar[str] = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        cause: Refusal | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.cause = cause  # why a 429 or 503 was answered, for the metrics (never shown)
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(ProblemError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750: no error code when the request carried no credentials at all.
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class UnsupportedMediaType(ProblemError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class PreconditionFailed(ProblemError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class RequestTimeout(ProblemError):
    status, title, slug = 408, "Request Timeout", "request-timeout"


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Content Too Large", "content-too-large"


class UnprocessableContent(ProblemError):
    """A well-formed request the service cannot act on; `errors` names the field, as validation does."""

    status, title, slug = 422, "Unprocessable Content", "validation"

    def __init__(self, detail: str, *, loc: tuple[str, ...]) -> None:
        super().__init__(detail, errors=[{"loc": list(loc), "msg": detail, "type": "value_error"}])


class PreconditionRequired(ProblemError):
    status, title, slug = 428, "Precondition Required", "precondition-required"


class TooManyRequests(ProblemError):
    status, title, slug = 429, "Too Many Requests", "too-many-requests"


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service Unavailable", "unavailable"


class OAuthError(ProblemError):
    """RFC 6749 section 5.2 errors, in problem+json with ``error`` and ``error_description``."""

    status, title, slug = 400, "Bad Request", "oauth-error"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description, error=error, error_description=description)


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_bytes(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


class MethodNotAllowed(ProblemError):
    status, title, slug = 405, "Method Not Allowed", "method-not-allowed"


class NotAcceptable(ProblemError):
    status, title, slug = 406, "Not Acceptable", "not-acceptable"


def _kinds() -> dict[int, type[ProblemError]]:
    """The error catalogue: the problem class of each status, from the classes above (the first
    defined for a status is its general kind; ``OAuthError`` is a 400 of its own)."""
    kinds: dict[int, type[ProblemError]] = {}
    for kind in ProblemError.__subclasses__():
        kinds.setdefault(kind.status, kind)
    return kinds


# Slug, title and the spec's problem examples (api.openapi) all come from here.
PROBLEM_KINDS = _kinds()


async def _problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    if exc.cause is not None:
        note_refusal(request.scope, exc.cause)
    return problem_response(exc.status, exc.body(), exc.headers)


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at this request's path, for a 405's `Allow`.

    Starlette names only the methods of the first route that matched the path; a path served by
    several routes (GET and POST of a collection, say) has them all. HEAD goes with GET (see
    ``api.middleware.Envelope``)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    kind = PROBLEM_KINDS.get(exc.status_code)
    slug, title = (kind.slug, kind.title) if kind else ("http-error", "HTTP Error")
    detail = (
        exc.detail
        if isinstance(exc.detail, str) and exc.detail != title
        else {
            404: "No resource lives at this path.",
            405: "This path does not accept that method.",
        }.get(exc.status_code, title)
    )
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": exc.status_code,
        "detail": detail,
    }
    return problem_response(exc.status_code, body, headers)


# Set on a request's state by a dependency that leaves a check to the endpoint (see
# ``api.auth.dependencies.deferred_patient``): an awaitable run before the request's validation
# errors are answered, which may refuse it first, as the dependency would have.
FIRST_CHECK = "first_check"


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first_check = getattr(request.state, FIRST_CHECK, None)
    if first_check is not None:
        try:
            await first_check()
        except ProblemError as refusal:
            return await _problem_error(request, refusal)
    # Only where and what: the rejected input is never echoed (it may be a password).
    issues = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    body = {
        "type": "/problems/validation",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "The request is not valid: see errors.",
        "errors": issues,
    }
    return problem_response(422, body)


def internal_error(exc: BaseException, scope: Scope) -> Response:
    """The answer to an exception nothing else handled: 503 for a database failure, else a
    500 that says nothing of the exception (which is logged by type and place only)."""
    failure = database_failure(exc)
    if failure is not None:
        note_refusal(scope, failure.refusal)
        return _unavailable(exc, failure)
    # The operator gets the type and where it happened; the client gets nothing it could use.
    logger.error("unhandled exception", **exception_summary(exc))
    body = {
        "type": "/problems/internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Something went wrong on our side. It has been logged.",
    }
    return problem_response(500, body)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return internal_error(exc, request.scope)


# Failures to reach the database, as opposed to errors in what was asked of it.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.TimeoutError,  # no pooled connection free within the pool timeout
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.OperationalError,
    ConnectionError,
    TimeoutError,
)
RETRY_AFTER_SECONDS = "5"
_RETRY = " Retry shortly: with the same Idempotency-Key, a retried write cannot be applied twice."


@dataclass(frozen=True)
class DatabaseFailure:
    """Why a request could not be served by the database, for the client and the metrics."""

    cause: Literal["unreachable", "busy", "locked", "statement-timeout", "conflict"]
    detail: str

    @property
    def refusal(self) -> Refusal:
        return _DATABASE_REFUSALS[self.cause]


_DATABASE_REFUSALS: dict[str, Refusal] = {
    "unreachable": "database-unreachable",
    "busy": "database-busy",
    "locked": "database-locked",
    "statement-timeout": "database-statement-timeout",
    "conflict": "database-conflict",
}


_UNREACHABLE = DatabaseFailure("unreachable", "The database is not reachable right now." + _RETRY)
_LOST = DatabaseFailure(
    "unreachable", "The connection to the database was lost during this request." + _RETRY
)
_BUSY = DatabaseFailure(
    "busy", "Every database connection of this node is in use right now." + _RETRY
)
_LOCKED = DatabaseFailure(
    "locked",
    "Another request for the same account held a record this request needed for longer than "
    "the lock timeout; nothing was written." + _RETRY,
)
_SLOW = DatabaseFailure(
    "statement-timeout", "The database did not finish this request in time." + _RETRY
)
_CONFLICT = DatabaseFailure(
    "conflict", "This request collided with another one at the database." + _RETRY
)
# SQLSTATE classes (PostgreSQL appendix A): 08 connection exception, 53 insufficient resources
# (too many connections), 57P admin or crash shutdown, cannot connect now.
_LOST_STATES = ("08", "53", "57P")


def database_failure(exc: BaseException) -> DatabaseFailure | None:
    """The 503 a database failure deserves, whoever raised it (SQLAlchemy, the driver under it,
    a socket); None for anything else (an integrity error is a bug to log, not a 503)."""
    seen: BaseException | None = exc
    for _ in range(6):  # the error, what it wraps (``orig``), and their causes
        if seen is None:
            return None
        failure = _failure_of(seen)
        if failure is not None:
            return failure
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return None


def _failure_of(exc: BaseException) -> DatabaseFailure | None:
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return _BUSY
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        if state == "55P03":
            return _LOCKED
        if state == "57014":
            return _SLOW
        if state in ("40001", "40P01"):
            return _CONFLICT
        if state.startswith(_LOST_STATES):
            return _LOST
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return _LOST
    if isinstance(
        exc,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | AsyncAdapt_asyncpg_dbapi.InterfaceError,
    ):
        # asyncpg's, or the SQLAlchemy adapter's DBAPI kind of it: a connection in a state
        # where it cannot be used (closed, or lost mid-statement).
        return _LOST
    if isinstance(exc, TimeoutError):
        return _SLOW
    if isinstance(exc, ConnectionError | OSError | sqlalchemy.exc.OperationalError):
        return _UNREACHABLE
    return None


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    return internal_error(exc, request.scope)


def _unavailable(exc: BaseException, failure: DatabaseFailure) -> Response:
    logger.warning(
        "database unavailable",
        cause=failure.cause,
        error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
    )
    problem = ServiceUnavailable(failure.detail, headers={"Retry-After": RETRY_AFTER_SECONDS})
    return problem_response(problem.status, problem.body(), problem.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Each is answered 503 when it is a database failure (database_failure), else 500.
    for unavailable in (
        *DATABASE_UNAVAILABLE,
        sqlalchemy.exc.DBAPIError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        AsyncAdapt_asyncpg_dbapi.Error,
    ):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)


_DESCRIPTIONS = {
    400: "The request is malformed (a bad cursor, a bad header value).",
    401: "No valid access token: missing, malformed, expired, revoked, or of the wrong kind.",
    403: "The token is valid but may not do this.",
    404: "No such resource, or it is not yours: the two are indistinguishable.",
    409: "Conflicts with what exists.",
    408: "The request body did not arrive in time (`JOURNAL_BODY_TIMEOUT_SECONDS`, 10 s by "
    "default); the connection is closed.",
    412: "If-Match does not match the current ETag: someone else changed it first.",
    413: "The request body is larger than the node accepts (`JOURNAL_MAX_BODY_BYTES`, 1 MiB by "
    "default).",
    415: "The body is not of a media type this operation reads (`Content-Type`).",
    422: "The request failed validation; `errors` says where.",
    428: "If-Match is required: read the resource first and send its ETag.",
    429: "Too many requests: wait `Retry-After` seconds. `RateLimit-*` headers show the budget.",
    503: "The node cannot serve this now (database unreachable, busy, a record locked for too "
    "long, or the node is draining); `detail` says which. Retry after `Retry-After` seconds, "
    "with the same Idempotency-Key.",
}


def problems(
    *statuses: int,
    kinds: dict[int, type[Problem]] | None = None,
    examples: dict[int, dict[str, Any]] | None = None,
    **descriptions: str,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries for the problems a route can answer with.

    Each is declared as ``application/problem+json`` (see ``api.openapi``). A description given
    as ``d404="..."`` replaces the generic one; ``kinds`` names the problem schema of a status
    whose problem carries members of its own (``{412: StaleProblem}``), and ``examples`` the
    example values of those members (``{412: {"current": ...}}``).
    """
    declared: dict[int | str, dict[str, Any]] = {}
    if 413 in statuses:
        statuses = tuple(sorted({*statuses, 408}))  # a route that takes a body can time out on it
    for status in statuses:
        model = {422: ValidationProblem, **(kinds or {})}.get(status, Problem)
        declared[status] = {
            "model": model,
            "description": descriptions.get(f"d{status}", _DESCRIPTIONS[status]),
        }
        if examples and status in examples:
            declared[status]["content"] = {"application/json": {"example": examples[status]}}
    return declared
