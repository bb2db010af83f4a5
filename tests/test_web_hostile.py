"""Hostile input to the therapist pages: whatever a client can put in a path, a query, a cookie, a
method or a body is answered with a page (HTML, with the pages' headers) and a 4xx or a normal
answer, never a 500 or problem+json; and nothing it sends signs the therapist out or in.

One therapist, signed in once, and one patient whose journal holds every kind of entry (so a
page that renders at all renders every branch of the templates)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.browser import CSP, csrf_of, person, web_sign_in, write
from tests.support.sharing import give_grant

HTML = "text/html; charset=utf-8"
UUID = "3f1f2b8e-9c1e-4a43-9d1c-0f3b7c1a9e11"


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Stage:
    app: FastAPI
    patient_id: str
    cookie: str  # the signed-in therapist's session cookie, as a Cookie header
    csrf: str  # the session's CSRF token


@pytest.fixture(scope="module")
async def stage(app: FastAPI) -> Stage:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        therapist = await person(client, "therapist", "Dr Hostile")
        patient = await person(client, "patient", "Pat \u202eRTL\u202c <i>Zero\u200bWidth</i> 🙂")
        now = datetime.now(UTC)
        session = await write(
            client,
            patient,
            "sessions",
            started_at=(now - timedelta(days=3)).isoformat(),
            route="intranasal",
            setting="other",
            dose_mg=0.5,
            notes="</svg><script>alert(1)</script>",
        )
        await write(
            client, patient, "sessions", started_at=now.isoformat(), route="oral", setting="home"
        )
        await write(
            client, patient, "intentions", text="{{ 7*7 }} {% raw %}", session_id=session["id"]
        )
        await write(
            client,
            patient,
            "reflections",
            text="' \" & < > \u2028",
            prompts=[{"prompt": "<b>?</b>", "answer": "]]><!--"}],
            emotions=["a\u0301", "\U0001f9e0"],
            session_id=session["id"],
        )
        for days in range(30):  # more than a page, so there is an older page to ask for
            await write(
                client,
                patient,
                "checkins",
                mood=days % 11,
                anxiety=0,
                energy=10,
                sleep_hours=0,
                note="${jndi:x}" if days == 0 else None,
                recorded_at=(now - timedelta(days=days, hours=1)).isoformat(),
            )
        await write(client, patient, "assessments", instrument="phq9", answers=[3] * 9)
        await write(client, patient, "assessments", instrument="gad7", answers=[0] * 7)
        await write(client, patient, "assessments", instrument="pcl5", answers=[4] * 20)
        await give_grant(client, patient, therapist)
        signed_in = await web_sign_in(client, therapist.email)
        assert signed_in.status_code == 303
        home = await client.get("/therapist/")
        assert home.status_code == 200
        token = client.cookies["therapist_session"]
    return Stage(app, patient.id, f"therapist_session={token}", csrf_of(home.text))


async def send(
    stage: Stage, method: str, path: str, cookie: str | bytes | None = None, **kwargs: Any
) -> httpx.Response:
    """One request from a client of its own: only the cookies given, none kept."""
    headers = dict(kwargs.pop("headers", {}))
    headers["Cookie"] = stage.cookie if cookie is None else cookie
    transport = httpx.ASGITransport(app=stage.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.request(method, path, headers=headers, **kwargs)


async def assert_still_signed_in(stage: Stage) -> None:
    response = await send(stage, "GET", "/therapist/")
    assert response.status_code == 200, "the hostile request ended the session"


def assert_a_page(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:300]
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    if response.status_code >= 400:
        assert response.headers["content-type"] == HTML
        assert "problem" not in response.headers["content-type"]
    if response.request.method != "HEAD" and response.status_code < 300:
        assert "<script" not in response.text


PATIENT = "/therapist/patients/{patient}"
# What a query value, a path segment or a method can be: (method, path, statuses allowed).
REQUESTS = [
    # Cursors: garbage, truncated, oversized, not UTF-8, of the wrong shape, and well formed but
    # naming times that do not exist in UTC.
    ("GET", PATIENT + "?before=", {400}),
    ("GET", PATIENT + "?before=garbage", {400}),
    ("GET", PATIENT + "?before====", {400}),
    ("GET", PATIENT + "?before=%00", {400}),
    ("GET", PATIENT + "?before=%FF%FE", {400}),
    ("GET", PATIENT + "?before=" + "A" * 5000, {400}),
    ("GET", PATIENT + "?before=" + cursor_of(f"0001-01-01T00:00:00+23:59|{UUID}"), {400}),
    ("GET", PATIENT + "?before=" + cursor_of(f"9999-12-31T23:59:59-23:59|{UUID}"), {400}),
    ("GET", PATIENT + "?before=" + cursor_of(f"2026-01-01T00:00:00|{UUID}"), {400}),
    ("GET", PATIENT + "?before=" + cursor_of("2026-01-01T00:00:00+00:00|not-a-uuid"), {400}),
    ("GET", PATIENT + "?before=" + cursor_of(f"2026-01-01T00:00:00+00:00|{UUID}|x"), {400}),
    ("GET", PATIENT + "?before=" + cursor_of(f"0001-01-01T00:00:00+00:00|{UUID}"), {200}),
    ("GET", PATIENT + "?before=" + cursor_of(f"9999-12-31T23:59:59+00:00|{UUID}"), {200}),
    (
        "GET",
        PATIENT + "?before=x&before=" + cursor_of(f"2026-01-01T00:00:00+00:00|{UUID}"),
        {200, 400},
    ),
    ("GET", PATIENT + "?before[]=x&limit=-1&%00=%00", {200}),
    # Paths: not UUIDs, UUIDs in other spellings, nobody's UUID, more segments than any page.
    ("GET", "/therapist/patients/not-a-uuid", {404}),
    ("GET", "/therapist/patients/" + "a" * 5000, {404}),
    ("GET", "/therapist/patients/%C3%A9%00", {404}),
    ("GET", "/therapist/patients/00000000-0000-0000-0000-000000000000", {404}),
    ("GET", "/therapist/patients/{" + UUID + "}", {404}),
    ("GET", "/therapist/patients/urn:uuid:" + UUID, {404}),
    ("GET", PATIENT + "/reflections", {404}),
    ("GET", "/therapist/patients/..%2F..%2Fv1%2Fme", {404}),
    ("GET", "/therapist/static/..%2F..%2Fsettings.py", {404}),
    ("GET", "/therapist/sign-in?ended=1&signed_out=1&next=https://evil.example", {303}),
    # HEAD answers as GET does; other methods are pages too, never the API's 405.
    ("HEAD", "/therapist/", {200}),
    ("HEAD", PATIENT, {200}),
    ("HEAD", "/therapist/sign-in", {303}),
    ("HEAD", "/therapist/static/therapist.css", {200}),
    ("HEAD", "/therapist/nothing", {404}),
    ("TRACE", "/therapist/", {404}),
    ("PROPFIND", PATIENT, {404}),
    ("PUT", "/therapist/sign-in", {404}),
    ("DELETE", PATIENT, {404}),
    ("PATCH", "/therapist/", {404}),
    ("OPTIONS", "/therapist/sign-out", {404}),
    ("POST", PATIENT, {404}),
]


@pytest.mark.parametrize(("method", "path", "statuses"), REQUESTS)
async def test_hostile_paths_queries_and_methods(
    stage: Stage, method: str, path: str, statuses: set[int]
) -> None:
    response = await send(stage, method, path.replace("{patient}", stage.patient_id))
    assert response.status_code in statuses, response.text[:300]
    assert_a_page(response)
    await assert_still_signed_in(stage)


async def test_head_answers_as_get(stage: Stage) -> None:
    for path in ("/therapist/", PATIENT.replace("{patient}", stage.patient_id)):
        get = await send(stage, "GET", path)
        head = await send(stage, "HEAD", path)
        assert (head.status_code, head.headers["content-type"]) == (
            get.status_code,
            get.headers["content-type"],
        )


def multipart(*parts: bytes) -> bytes:
    return b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=b"
# Bodies for the two forms: (content type or None, body). None of them carries the CSRF token,
# or carries it somewhere the form does not read it, so none may sign anyone in or out.
BODIES: list[tuple[str | None, bytes]] = [
    (None, b""),
    (None, b"csrf_token={csrf}"),
    ("application/json", b'{"csrf_token": "{csrf}"}'),
    ("text/plain", b"csrf_token={csrf}"),
    ("application/xml", b"<csrf_token>{csrf}</csrf_token>"),
    (FORM, b""),
    (FORM, b"csrf_token=%zz&email=%ff%fe&password=%00"),
    (FORM, b"csrf_token=" + b"x" * 10_000),
    (FORM, b"&".join(b"f%d=1" % n for n in range(2_000))),
    (FORM, b"=&==&&csrf_token"),
    (MULTIPART, b"--b\r\nnot a part"),
    (MULTIPART, multipart(b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n\xff\xfe')),
    (MULTIPART, multipart(b'Content-Disposition: form-data; name="f"; filename="a"\r\n\r\nabc')),
    (MULTIPART, multipart(*[b'Content-Disposition: form-data; name="f"\r\n\r\n1'] * 50)),
    ("multipart/form-data", b"--b\r\n"),
    ("multipart/form-data; boundary=" + "b" * 5000, b"--b\r\n"),
    (FORM + "; charset=utf-16", "csrf_token=x".encode("utf-16")),
]


@pytest.mark.parametrize("path", ["/therapist/sign-in", "/therapist/sign-out"])
@pytest.mark.parametrize(("content_type", "body"), BODIES)
async def test_hostile_form_bodies(
    stage: Stage, path: str, content_type: str | None, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    content = body.replace(b"{csrf}", stage.csrf.encode())
    response = await send(stage, "POST", path, content=content, headers=headers)
    assert response.status_code in {400, 403}, response.text[:300]
    assert_a_page(response)
    assert "therapist_session" not in response.headers.get("set-cookie", "")
    await assert_still_signed_in(stage)


async def test_a_body_over_the_limit_is_refused_unread(stage: Stage) -> None:
    body = b"csrf_token=" + b"x" * (2 * 1024 * 1024)
    response = await send(stage, "POST", "/therapist/sign-out", content=body)
    # Refused by the Gate's body limit before any route (as problem+json: api.middleware is the
    # API's).
    assert response.status_code == 413
    await assert_still_signed_in(stage)


COOKIES: list[bytes] = [
    b"",
    b"therapist_session=",
    b"therapist_session=garbage",
    b"therapist_session=" + b"x" * 8000,
    b"therapist_session=\xff\xfe\x00",
    b'therapist_session="quoted"',
    b"therapist_session=%00; therapist_session=x",
    b"therapist_session",
    b";;;=;=x",
    b"therapist_csrf=x; " * 200,
]


@pytest.mark.parametrize("cookie", COOKIES)
@pytest.mark.parametrize(
    "path", ["/therapist/", PATIENT, "/therapist/sign-in", "/therapist/sign-out"]
)
async def test_hostile_cookies(stage: Stage, cookie: bytes, path: str) -> None:
    for method in ("GET", "POST"):
        response = await send(
            stage, method, path.replace("{patient}", stage.patient_id), cookie=cookie
        )
        assert response.status_code in {200, 303, 400, 403, 404}, response.text[:300]
        assert_a_page(response)
        if response.status_code == 303:  # to sign in (or home, from the sign-out link)
            location = response.headers["location"]
            assert location.startswith("/therapist/sign-in") or location == "/therapist/"
        assert "Your patients" not in response.text
    await assert_still_signed_in(stage)


async def test_an_unknown_route_under_the_pages_is_a_page(stage: Stage) -> None:
    response = await send(stage, "GET", f"/therapist/{uuid.uuid4()}/x?y=z")
    assert response.status_code == 404
    assert_a_page(response)
    # And the API's own unknown paths still answer as the API does.
    api = await send(stage, "GET", "/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
