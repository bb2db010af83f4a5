"""The therapist web view's routes: sign in, patients, a patient's page, sign out.

Read only, server-rendered, no script. Kept out of the OpenAPI spec: these are pages for people,
not operations for integrators. Input is read by hand (a path segment, a query value, form
fields) rather than validated by FastAPI, so that anything a browser can send is answered with
a page, never with problem+json or a 500.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from api.accounts.repository import AccountRepository
from api.accounts.schemas import normalize_email
from api.audit.repository import record_seen
from api.auth.dependencies import PasswordsDep, SettingsDep
from api.database import SessionDep
from api.errors import ProblemError
from api.grants.repository import GrantRepository
from api.journal.cursors import InvalidCursor, decode_cursor
from api.models import Grant, Role
from api.models.base import utcnow
from api.patients.access import grant_from
from api.ratelimit import client_address
from api.routing import api_router
from api.settings import Settings
from api.web import patient_page, sessions
from api.web.rendering import (
    PAGE_HEADERS,
    STYLESHEET,
    WebRoute,
    message_page,
    remember_session,
    render,
)
from api.web.sessions import SignedIn

router = api_router(prefix="/therapist", include_in_schema=False, route_class=WebRoute)

HOME = "/therapist/"
SIGN_IN = "/therapist/sign-in"
MAX_FIELD = 4096  # as the token endpoint: longer input is refused unread
MAX_CURSOR = 200
# A page read answers HEAD as it answers GET (FastAPI's routes would otherwise leave HEAD out).
READ_METHODS = ["GET", "HEAD"]
WRONG_CREDENTIALS = "The email or password is incorrect."
FORM_EXPIRED = "This form has expired. Please try again."
ACCESS_ENDED = (
    "Access to this patient's journal has ended: the grant was revoked or has expired. "
    "Nothing of it is shown any more."
)
NO_PATIENT = "No patient with this id has shared their journal with you."


async def signed_in(
    request: Request, session: SessionDep, settings: SettingsDep
) -> SignedIn | None:
    """The live web session the request's cookie names, moved forward; None otherwise."""
    remember_session(request, session)
    token = request.cookies.get(sessions.session_cookie(settings))
    return await sessions.resume(session, settings, token)


SignedInDep = Annotated[SignedIn | None, Depends(signed_in)]


def _to_sign_in(request: Request, settings: Settings) -> Response:
    """Back to the sign-in page; a cookie that no longer works is cleared and explained."""
    cookie = sessions.session_cookie(settings)
    if cookie not in request.cookies:
        return RedirectResponse(SIGN_IN, status_code=303)
    response = RedirectResponse(f"{SIGN_IN}?ended=1", status_code=303)
    _clear(response, settings, cookie)
    return response


def _set(response: Response, settings: Settings, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )


def _clear(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=settings.secure_cookies
    )


async def _form(request: Request) -> FormData | None:
    """The posted form, or None when the body is not one we can read."""
    try:
        return await request.form(max_files=0, max_fields=10, max_part_size=MAX_FIELD)
    except Exception:
        # A malformed body is the client's mistake, answered 400: not ours to log as an error.
        return None


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and len(value) <= MAX_FIELD else None


def _is_cursor(value: str) -> bool:
    """A cursor this service could have made: (time, id), the time one that exists in UTC (an
    edited cursor can name a time whose zone pushes it past year 9999 or before year 1)."""
    if len(value) > MAX_CURSOR:
        return False
    try:
        at, _entry_id = decode_cursor(value)
        at.astimezone(UTC)
    except (InvalidCursor, OverflowError):
        return False
    return True


def _sign_in_page(
    settings: Settings, status: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    """The form, with a fresh CSRF token in a cookie and the same in a hidden field: a page of
    another site can make the browser send the cookie, but cannot read it to fill the field."""
    token = sessions.new_token()
    response = render("sign_in.html", status, csrf_token=token, error=error, notice=notice)
    _set(response, settings, sessions.csrf_cookie(settings), token)
    return response


@router.api_route("", methods=READ_METHODS)
async def therapist_root() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.api_route("/sign-in", methods=READ_METHODS)
async def sign_in_form(request: Request, settings: SettingsDep, current: SignedInDep) -> Response:
    if current is not None:
        return RedirectResponse(HOME, status_code=303)
    if request.query_params.get("ended") is not None:
        return _sign_in_page(settings, notice="Your session has ended. Please sign in again.")
    if request.query_params.get("signed_out") is not None:
        return _sign_in_page(settings, notice="You are signed out.")
    return _sign_in_page(settings)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    current: SignedInDep,
) -> Response:
    form = await _form(request)
    if form is None:
        return _sign_in_page(settings, 400, error="The form could not be read. Please try again.")
    if not sessions.same_token(
        _field(form, "csrf_token"), request.cookies.get(sessions.csrf_cookie(settings))
    ):
        return _sign_in_page(settings, 403, error=FORM_EXPIRED)
    email_field, password = _field(form, "email"), _field(form, "password")
    # The token endpoint's budget, per address and per account: the same guesses, counted once.
    await request.app.state.limiter.check_password_attempt(
        client_address(request.scope), email_field
    )
    if not email_field or not password:
        return _sign_in_page(settings, 400, error="Enter your email and your password.")
    try:
        email: str | None = normalize_email(email_field)
    except ValueError:
        email = None
    account = await AccountRepository(session).by_email(email) if email else None
    # Unknown email and wrong password take the same time and give the same answer.
    matches, new_hash = await passwords.verify(password, account.password_hash if account else None)
    if account is None or not matches:
        return _sign_in_page(settings, 401, error=WRONG_CREDENTIALS)
    if new_hash is not None:
        account.password_hash = new_hash
    if account.role is not Role.THERAPIST:
        return message_page(
            403,
            "These pages are for therapists",
            "Your journal lives in the app on your phone. Nothing has changed in it.",
        )
    if current is not None:
        # A new sign-in never reuses the session before it.
        await sessions.end(session, current.web_session, utcnow())
    token = await sessions.start(session, settings, account)
    response = RedirectResponse(HOME, status_code=303)
    _set(response, settings, sessions.session_cookie(settings), token)
    _clear(response, settings, sessions.csrf_cookie(settings))
    return response


@router.api_route("/sign-out", methods=READ_METHODS)
async def sign_out_link() -> Response:
    # Signing out is a form (POST, with its CSRF token); a plain visit goes home.
    return RedirectResponse(HOME, status_code=303)


@router.post("/sign-out")
async def sign_out(
    request: Request, session: SessionDep, settings: SettingsDep, current: SignedInDep
) -> Response:
    if current is None:
        return _to_sign_in(request, settings)
    form = await _form(request)
    if form is None or not sessions.same_token(_field(form, "csrf_token"), current.csrf_token):
        return message_page(
            403,
            "You are still signed in",
            "This sign-out form has expired: use the Sign out button on a page you open now.",
            therapist=current.therapist,
            csrf_token=current.csrf_token,
        )
    await sessions.end(session, current.web_session, utcnow())
    response = RedirectResponse(f"{SIGN_IN}?signed_out=1", status_code=303)
    _clear(response, settings, sessions.session_cookie(settings))
    return response


@router.api_route("/", methods=READ_METHODS)
async def patients(
    request: Request, session: SessionDep, settings: SettingsDep, current: SignedInDep
) -> Response:
    if current is None:
        return _to_sign_in(request, settings)
    therapist = current.therapist
    rows = await GrantRepository(session, therapist.id, Role.THERAPIST).active_patients(utcnow())
    # As GET /v1/patients: each patient listed sees it in their access log.
    await record_seen(
        session,
        request.state.request_id,
        therapist.id,
        [(grant.patient_id, grant.id) for grant, *_ in rows],
        "patients",
        "list",
    )
    # One line per patient: the newest grant stands for the patient, as on the patient's page.
    newest: dict[uuid.UUID, tuple[Grant, str]] = {}
    for grant, patient_name, _therapist_name, _therapist_email in rows:
        kept = newest.get(grant.patient_id)
        if kept is None or (grant.created_at, grant.id) > (kept[0].created_at, kept[0].id):
            newest[grant.patient_id] = (grant, patient_name)
    shared = sorted(newest.values(), key=lambda pair: (pair[1].casefold(), str(pair[0].id)))
    return render(
        "patients.html",
        therapist=therapist,
        csrf_token=current.csrf_token,
        shared=[
            {
                "patient_id": grant.patient_id,
                "name": name,
                "scopes": patient_page.labels(grant.scopes),
                "expires_at": grant.expires_at,
            }
            for grant, name in shared
        ],
    )


@router.api_route("/patients/{patient_id}", methods=READ_METHODS)
async def patient(
    request: Request,
    patient_id: str,
    session: SessionDep,
    settings: SettingsDep,
    current: SignedInDep,
) -> Response:
    if current is None:
        return _to_sign_in(request, settings)
    signed: dict[str, Any] = {"therapist": current.therapist, "csrf_token": current.csrf_token}
    try:
        wanted = uuid.UUID(patient_id)
    except ValueError:
        return message_page(404, "Not found", NO_PATIENT, **signed)
    before = request.query_params.get("before")
    if before is not None and not _is_cursor(before):
        return message_page(
            400, "That page does not exist", "Go back to the newest entries.", **signed
        )
    seen = await grant_from(session, current.therapist.id, wanted)
    if seen is None:
        return message_page(404, "Not found", NO_PATIENT, **signed)
    try:
        page = await patient_page.build(request, session, settings, seen, before)
    except ProblemError as refused:
        # The gate said no, and recorded it. Nothing of the patient's is shown.
        if refused.status == 401:
            return message_page(403, "Access has ended", ACCESS_ENDED, **signed)
        return message_page(refused.status, "Not allowed", NO_PATIENT, **signed)
    return render(
        "patient.html",
        page=page,
        crisis_resources=settings.crisis_resources,
        **patient_page.DISPLAY,
        **signed,
    )


@router.api_route("/static/therapist.css", methods=READ_METHODS)
async def stylesheet() -> Response:
    # The page asks for it with a version of its content in the query: cache it for good.
    return Response(
        STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


async def not_found(request: Request) -> Response:
    return message_page(404, "Not found", "There is no page at this address.", PAGE_HEADERS)


# Last: whatever else is asked under /therapist/, with any method (TRACE, or one made up, or one
# a page does not take), is a page too, never the API's problem+json 405. A plain route, since
# an APIRoute lists its methods: an empty list is Starlette's "every method". ``add_route``
# takes nothing from the router's prefix, so the path is written out whole.
router.add_route(f"{router.prefix}/{{rest:path}}", not_found, methods=[], include_in_schema=False)
