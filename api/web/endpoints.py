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
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from api.audit.repository import record_seen
from api.auth.credentials import check_credentials
from api.auth.dependencies import Caller, PasswordsDep, SettingsDep
from api.database import SessionDep
from api.errors import NotFound, ProblemError
from api.grants.repository import GrantRepository
from api.journal.cursors import InvalidCursor, decode_cursor
from api.models import AuditOutcome, Grant, Role
from api.models.base import utcnow
from api.pairing import service as pairing
from api.pairing.schemas import PairingCodeRead
from api.patients.access import ReadAccess, grant_from, open_read, record_stray
from api.ratelimit import client_address
from api.routing import api_router
from api.safety_flags import service as safety_flags
from api.safety_flags.endpoints import NO_FLAG
from api.safety_flags.repository import FLAG_SCOPES, flag_counts
from api.settings import Settings
from api.text import is_storable
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
MAX_NEXT = 400  # a patient's page with an older-entries cursor fits well within it
MAX_NOTE = 500  # as the API's acknowledgement
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


def safe_next(value: str | None) -> str | None:
    """A page of this view to go back to after signing in, or None. Only a path under
    /therapist/ on this site, in printable ASCII (a browser sends paths percent-encoded): no
    scheme, no host, no "//" or backslash that a browser would read as another site's address,
    and not the sign-in or sign-out pages themselves. Anything else is dropped, never followed:
    the sign-in form must not become a way to send a therapist to another site."""
    if not value or len(value) > MAX_NEXT or not value.startswith(HOME):
        return None
    if any(not ("!" <= char <= "~") or char == "\\" for char in value):
        return None
    parts = urlsplit(value)
    # Decoded too: a browser reads "%2e%2e" in a path as "..".
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or "//" in path or "\\" in path or "/../" in f"{path}/":
        return None
    if parts.path in (SIGN_IN, "/therapist/sign-out"):
        return None
    return value


def _to_sign_in(request: Request, settings: Settings) -> Response:
    """Back to the sign-in page, keeping the page that was asked for (a page read, other than
    the list every sign-in leads to) so that signing in returns to it; a cookie that no longer
    works is cleared and explained."""
    query: dict[str, str] = {}
    cookie = sessions.session_cookie(settings)
    if cookie in request.cookies:
        query["ended"] = "1"
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method in READ_METHODS and wanted != HOME and safe_next(wanted):
        query["next"] = wanted
    location = f"{SIGN_IN}?{urlencode(query)}" if query else SIGN_IN
    response = RedirectResponse(location, status_code=303)
    if "ended" in query:
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
    settings: Settings,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    *,
    ended: bool = False,
    email: str | None = None,
    next_page: str | None = None,
) -> Response:
    """The form, with a fresh CSRF token in a cookie and the same in a hidden field: a page of
    another site can make the browser send the cookie, but cannot read it to fill the field.
    ``ended``: the session ran out (the warning says why and that signing in returns to the page
    asked for, ``next_page``); ``email`` is typed back in after a refused attempt."""
    token = sessions.new_token()
    response = render(
        "sign_in.html",
        status,
        csrf_token=token,
        error=error,
        notice=notice,
        ended=ended,
        email=email or "",
        next_page=next_page,
        idle_minutes=max(1, settings.web_session_idle_seconds // 60),
    )
    _set(response, settings, sessions.csrf_cookie(settings), token)
    return response


@router.api_route("", methods=READ_METHODS)
async def therapist_root() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.api_route("/sign-in", methods=READ_METHODS)
async def sign_in_form(request: Request, settings: SettingsDep, current: SignedInDep) -> Response:
    next_page = safe_next(request.query_params.get("next"))
    if current is not None:
        return RedirectResponse(next_page or HOME, status_code=303)
    if request.query_params.get("ended") is not None:
        return _sign_in_page(settings, ended=True, next_page=next_page)
    if request.query_params.get("signed_out") is not None:
        return _sign_in_page(settings, notice="You are signed out.")
    return _sign_in_page(settings, next_page=next_page)


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
    next_page = safe_next(_field(form, "next"))
    # The token endpoint's budget, per address and per account: the same guesses, counted once.
    await request.app.state.limiter.check_password_attempt(
        client_address(request.scope), email_field
    )
    # A refused attempt keeps what was typed but the password, and where it was going.
    if not email_field or not password:
        return _sign_in_page(
            settings,
            400,
            error="Enter your email and your password.",
            email=email_field,
            next_page=next_page,
        )
    account = await check_credentials(session, passwords, email_field, password)
    if account is None:
        return _sign_in_page(
            settings, 401, error=WRONG_CREDENTIALS, email=email_field, next_page=next_page
        )
    if account.deactivated_at is not None:
        return _sign_in_page(
            settings, 403, error="This account has been deactivated. Ask the operator."
        )
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
    response = RedirectResponse(next_page or HOME, status_code=303)
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
    return await _patients_page(request, session, current)


async def _patients_page(
    request: Request,
    session: AsyncSession,
    current: SignedIn,
    pairing: PairingCodeRead | None = None,
    status: int = 200,
    pairing_error: str | None = None,
) -> Response:
    therapist = current.therapist
    rows = await GrantRepository(session, therapist.id, Role.THERAPIST).active_patients(utcnow())
    # As GET /v1/patients: each patient listed sees it in their access log.
    await record_seen(
        session,
        request.state.request_id,
        therapist.id,
        [(row.grant.patient_id, row.grant.id) for row in rows],
        "patients",
        "list",
    )
    # One line per patient: the newest grant stands for the patient, as on the patient's page.
    newest: dict[uuid.UUID, tuple[Grant, str]] = {}
    for row in rows:
        grant, patient_name = row.grant, row.patient_name
        kept = newest.get(grant.patient_id)
        if kept is None or (grant.created_at, grant.id) > (kept[0].created_at, kept[0].id):
            newest[grant.patient_id] = (grant, patient_name)
    counts = await flag_counts(session, [grant for grant, _name in newest.values()])

    def open_count(patient_id: uuid.UUID) -> int:
        flags = counts.get(patient_id)
        return 0 if flags is None else flags.open_count

    # Patients with open safety flags first, then by name.
    shared = sorted(
        newest.values(),
        key=lambda pair: (
            0 if open_count(pair[0].patient_id) else 1,
            pair[1].casefold(),
            str(pair[0].id),
        ),
    )
    clocks = await patient_page.clocks_of(session, list(newest))
    return render(
        "patients.html",
        status,
        therapist=therapist,
        csrf_token=current.csrf_token,
        pairing=pairing,
        pairing_error=pairing_error,
        now=utcnow(),
        open_flags_total=sum(open_count(patient_id) for patient_id in newest),
        shared=[
            {
                "patient_id": grant.patient_id,
                "name": name,
                "scopes": patient_page.labels(grant.scopes),
                "expires_at": grant.expires_at,
                "clock": clocks[grant.patient_id],
                "open_flags": counts.get(grant.patient_id),
            }
            for grant, name in shared
        ],
    )


@router.post("/pairing-codes")
async def make_pairing_code(
    request: Request, session: SessionDep, settings: SettingsDep, current: SignedInDep
) -> Response:
    """The patient list's button: a new pairing code, shown once on the page it answers with."""
    if current is None:
        return _to_sign_in(request, settings)
    form = await _form(request)
    if form is None or not sessions.same_token(_field(form, "csrf_token"), current.csrf_token):
        return await _patients_page(
            request, session, current, status=403, pairing_error=FORM_EXPIRED
        )
    caller = Caller(
        id=current.therapist.id, role=Role.THERAPIST, login_id=current.web_session.login_id
    )
    try:
        code = await pairing.create_code(session, caller)
    except ProblemError as refused:
        return await _patients_page(
            request, session, current, status=refused.status, pairing_error=refused.detail
        )
    return await _patients_page(request, session, current, pairing=code)


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
    seen = await grant_from(session, current.therapist.id, current.web_session.login_id, wanted)
    if seen is None:
        # Never shared with this therapist: kept for the operator, not in anyone's access log.
        stray = ReadAccess(
            request=request,
            session=session,
            therapist_id=current.therapist.id,
            patient_id=wanted,
            grant_id=None,
            resource="grant",
            action="read",
            scopes=frozenset(),
        )
        await record_stray(stray, NotFound(NO_PATIENT))
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
        clock=page.clock,
        crisis_resources=settings.crisis_resources,
        **patient_page.DISPLAY,
        **signed,
    )


@router.post("/patients/{patient_id}/safety-flags/{flag_id}/acknowledge")
async def acknowledge_flag(
    request: Request,
    patient_id: str,
    flag_id: str,
    session: SessionDep,
    settings: SettingsDep,
    current: SignedInDep,
) -> Response:
    """The Acknowledge button of an open flag: through the same gate, audited as the API's."""
    if current is None:
        return _to_sign_in(request, settings)
    signed: dict[str, Any] = {"therapist": current.therapist, "csrf_token": current.csrf_token}
    form = await _form(request)
    if form is None or not sessions.same_token(_field(form, "csrf_token"), current.csrf_token):
        return message_page(
            403,
            "Nothing was acknowledged",
            "This form has expired: open the patient's page again and acknowledge from there.",
            **signed,
        )
    note = (_field(form, "note") or "").strip()
    if len(note) > MAX_NOTE or not is_storable(note):
        return message_page(
            400,
            "Nothing was acknowledged",
            f"The note must be at most {MAX_NOTE} characters of plain text.",
            **signed,
        )
    try:
        wanted, flag = uuid.UUID(patient_id), uuid.UUID(flag_id)
    except ValueError:
        return message_page(404, "Not found", NO_PATIENT, **signed)
    seen = await grant_from(session, current.therapist.id, current.web_session.login_id, wanted)
    if seen is None:
        # Never shared with this therapist: kept for the operator, not in anyone's access log.
        stray = ReadAccess(
            request=request,
            session=session,
            therapist_id=current.therapist.id,
            patient_id=wanted,
            grant_id=None,
            resource="safety_flags",
            action="acknowledge",
            scopes=frozenset(),
        )
        await record_stray(stray, NotFound(NO_PATIENT))
        return message_page(404, "Not found", NO_PATIENT, **signed)
    try:
        access = await open_read(
            request, session, seen.reader(), wanted, FLAG_SCOPES, "safety_flags", "acknowledge"
        )
    except ProblemError as refused:
        if refused.status == 401:
            return message_page(403, "Access has ended", ACCESS_ENDED, **signed)
        return message_page(refused.status, "Not allowed", NO_PATIENT, **signed)
    acknowledged = await safety_flags.acknowledge(
        session,
        access.scope,
        flag,
        therapist_id=current.therapist.id,
        grant_id=access.grant_id,
        note=note or None,
    )
    if acknowledged is None:
        await access.refuse(AuditOutcome.NOT_FOUND, NotFound(NO_FLAG))
        return message_page(404, "Not found", "No safety flag with this id.", **signed)
    await access.allowed([acknowledged.id])
    return RedirectResponse(f"/therapist/patients/{wanted}#safety", status_code=303)


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
