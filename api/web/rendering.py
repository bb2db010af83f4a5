"""HTML out: Jinja2 with autoescape on for every template, the pages' security headers, and
error pages instead of problem+json on the web routes.

The API's problem+json handlers stay as they are: ``WebRoute`` turns errors into pages before
they reach them, for the routes of the web router only.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.types import Scope

from api.errors import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    ProblemError,
    database_failure,
    note_refusal,
)
from api.logs import exception_summary
from api.web.local_time import UTC_TIME, LocalTime, ago

HERE = Path(__file__).parent
STATIC_PATH = "/therapist/static"
STYLESHEET = (HERE / "static" / "therapist.css").read_bytes()
STYLESHEET_VERSION = hashlib.sha256(STYLESHEET).hexdigest()[:12]
logger = structlog.get_logger("api.web")

# No script may run and no style may come from anywhere but our own stylesheet: a patient's
# words that slipped past escaping still could not execute, or be framed to trick a click.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    # Pages name patients in their paths: never tell another site where the reader came from.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _clock(context: Context) -> LocalTime:
    """The zone the page shows times in: its ``clock`` (the patient's zone), else UTC."""
    clock = context.get("clock")
    return clock if isinstance(clock, LocalTime) else UTC_TIME


@pass_context
def _when(context: Context, at: datetime) -> str:
    return _clock(context).when(at)


@pass_context
def _day(context: Context, at: datetime) -> str:
    return _clock(context).day(at)


@pass_context
def _weekday(context: Context, at: datetime) -> str:
    return _clock(context).weekday(at)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value).replace("-", "\N{MINUS SIGN}")


def _listing(items: list[str]) -> str:
    """ "a, b and c": a list in words."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Dates and times: ``when`` (day and time), ``day``, ``weekday`` (no zone: for where the zone is
# named once nearby), all in the page's ``clock``.
environment.filters.update(
    when=_when, day=_day, weekday=_weekday, words=_words, signed=_signed, listing=_listing
)
environment.globals.update(
    stylesheet=f"{STATIC_PATH}/therapist.css?v={STYLESHEET_VERSION}", ago=ago
)


def render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    context.setdefault("therapist", None)
    context.setdefault("csrf_token", None)
    html = environment.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def message_page(
    status: int, title: str, text: str, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    return render("message.html", status, headers, title=title, text=text, **context)


_TITLES = {
    400: "That request could not be read",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not found",
    413: "Too much to send",
    422: "That request could not be read",
    429: "Please wait a moment",
    503: "Please try again shortly",
}


def error_page(status: int, detail: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    title = _TITLES.get(status, "Something went wrong")
    return message_page(status, title, detail, headers)


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    # A Bearer challenge means nothing to a browser; waiting times do.
    return {name: value for name, value in headers.items() if name.lower() != "www-authenticate"}


class WebRoute(APIRoute):
    """A route of the web view: security headers on every answer, and errors as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except Exception as exc:
                await _roll_back(request)
                response = _error_page_for(exc, request.scope)
            response.headers.update(PAGE_HEADERS)
            return response

        return web_handler


def remember_session(request: Request, session: AsyncSession) -> None:
    """Name the request's database session for ``WebRoute``, which rolls it back when a page
    answers an error (every web route that uses the database calls this, via ``signed_in``)."""
    request.state.web_database_session = session


async def _roll_back(request: Request) -> None:
    # The session's dependency is closed only after the route's handler (``web_handler``) has
    # returned: an error turned into a page there would otherwise be committed, with whatever
    # the request wrote before it failed. This undoes a POST's writes only: on PostgreSQL a GET
    # or HEAD runs in autocommit (``api.database.get_session``), so what it wrote (the audit
    # records of a page) is committed already, statement by statement, and stays.
    session: AsyncSession | None = getattr(request.state, "web_database_session", None)
    if session is not None:
        with contextlib.suppress(*DATABASE_UNAVAILABLE):
            await session.rollback()


def _error_page_for(exc: Exception, scope: Scope) -> HTMLResponse:
    if isinstance(exc, ProblemError):
        if exc.cause is not None:
            note_refusal(scope, exc.cause)
        return error_page(exc.status, exc.detail, _kept_headers(exc.headers))
    if isinstance(exc, RequestValidationError):
        return error_page(400, "Part of the address or the form is not valid.")
    if isinstance(exc, HTTPException):
        return error_page(exc.status_code, "That did not work.")
    failure = database_failure(exc)
    if failure is not None:
        note_refusal(scope, failure.refusal)
        logger.warning(
            "database unavailable", error_type=f"{type(exc).__module__}.{type(exc).__qualname__}"
        )
        return error_page(
            503,
            "The journal cannot be reached right now. Please try again in a moment.",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )
    # A page, not the API's problem+json, logged as api.errors logs it: the type and where,
    # never the message (it can quote a row).
    logger.error("unhandled exception", **exception_summary(exc))
    return error_page(500, "Something went wrong on our side. It has been logged.")
