"""A patient's day and a therapist's read of it, through every kind of route they use.

``walk`` signs a new patient and a new therapist up, then goes through what a day brings: the
patient writes (with and without an Idempotency-Key, a resend among them), edits, deletes,
lists, syncs, reads the summary and shares with the therapist; the therapist reads what was
shared with a read token, acknowledges a safety flag; the patient reads the access log, revokes
the grant (the therapist's next read is refused) and signs out (the patient's next write is
refused). Each answer is kept as an ``Answer``, in order, with the status the walk expects, so
two walks can be compared answer by answer (``tests/test_tracing.py``).

The therapist's invitation is made beforehand (``invite``), through the operator's own
database session rather than the app's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.conformance import contract
from tests.support.journal import body_for, phq9
from tests.support.people import PASSWORD, invite, unique_email
from tests.support.sharing import ALL_SCOPES, bearer


@dataclass(frozen=True)
class Answer:
    """One answer of a walk, with what identifies it across walks (no ids, no times)."""

    method: str
    route: str  # the spec's path template
    status: int
    expected: int
    media_type: str
    fields: tuple[str, ...]  # the top-level keys of a JSON object body, sorted


class Walk:
    """Requests of one walk, each kept as an ``Answer``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.answers: list[Answer] = []

    async def send(
        self, expected: int, method: str, url: str, **options: Any
    ) -> dict[str, Any] | Any:
        response = await self.client.request(method, url, **options)
        found = contract().operation(method.lower(), response.request.url.path)
        media_type = response.headers.get("content-type", "").split(";")[0]
        body: Any = response.json() if media_type.endswith("json") else None
        self.answers.append(
            Answer(
                method=method,
                route=found[0] if found else response.request.url.path,
                status=response.status_code,
                expected=expected,
                media_type=media_type,
                fields=tuple(sorted(body)) if isinstance(body, dict) else (),
            )
        )
        return body if response.status_code == expected else {}


async def walk(client: httpx.AsyncClient, invitation: tuple[str, str]) -> list[Answer]:
    """The day described above; the answers in the order they came. ``invitation`` is a
    therapist's (email, code)."""
    w = Walk(client)
    email = unique_email("patient")
    signup = {"email": email, "password": PASSWORD, "display_name": "Walker", "role": "patient"}
    patient_id = (await w.send(201, "POST", "/v1/accounts", json=signup)).get("id")
    signin = {"grant_type": "password", "username": email, "password": PASSWORD}
    tokens = await w.send(200, "POST", "/v1/auth/token", data=signin)
    patient = bearer(tokens.get("access_token", ""))
    await w.send(200, "GET", "/v1/me", headers=patient)
    await w.send(200, "PATCH", "/v1/me", json={"time_zone": "Europe/Berlin"},
                 headers={**patient, "If-Match": '"1"'})  # fmt: skip

    # The day's entries: a resend of the same POST answers the same, and writes nothing more.
    session = await w.send(201, "POST", "/v1/sessions", json=body_for("sessions"), headers=patient)
    keyed = {**patient, "Idempotency-Key": str(uuid.uuid4())}
    checkin = await w.send(201, "POST", "/v1/checkins", json={"mood": 6}, headers=keyed)
    await w.send(201, "POST", "/v1/checkins", json={"mood": 6}, headers=keyed)
    await w.send(422, "POST", "/v1/checkins", json={"mood": 7}, headers=keyed)
    reflection = body_for("reflections", session_id=session.get("id"))
    await w.send(201, "POST", "/v1/reflections", json=reflection, headers=patient)
    intention = await w.send(
        201, "POST", "/v1/intentions", json=body_for("intentions"), headers=patient
    )
    flagged = body_for("assessments", answers=phq9(12, item9=1))
    assessment = await w.send(201, "POST", "/v1/assessments", json=flagged, headers=patient)
    await w.send(201, "POST", "/v1/checkins", json={"mood": 2, "private": True}, headers=patient)

    checkin_url = f"/v1/checkins/{checkin.get('id')}"
    await w.send(
        200, "PATCH", checkin_url, json={"mood": 5}, headers={**patient, "If-Match": '"1"'}
    )
    await w.send(
        412, "PATCH", checkin_url, json={"mood": 4}, headers={**patient, "If-Match": '"1"'}
    )
    await w.send(200, "GET", checkin_url, headers=patient)
    await w.send(204, "DELETE", f"/v1/intentions/{intention.get('id')}",
                 headers={**patient, "If-Match": '"1"'})  # fmt: skip
    await w.send(200, "GET", "/v1/checkins", params={"limit": 1}, headers=patient)
    await w.send(200, "GET", "/v1/reflections", params={"session_id": session.get("id")},
                 headers=patient)  # fmt: skip
    await w.send(200, "GET", "/v1/sync", params={"cursor": "0"}, headers=patient)
    await w.send(200, "GET", "/v1/me/summary", headers=patient)
    await w.send(200, "GET", "/v1/me/safety-flags", headers=patient)

    # The therapist reads what is shared, with a read token.
    therapist_email, code = invitation
    therapist_signup = {"email": therapist_email, "password": PASSWORD, "role": "therapist",
                        "display_name": "Dr. Walk", "invitation_code": code}  # fmt: skip
    await w.send(201, "POST", "/v1/accounts", json=therapist_signup)
    therapist_signin = {"grant_type": "password", "username": therapist_email, "password": PASSWORD}
    therapist = bearer(
        (await w.send(200, "POST", "/v1/auth/token", data=therapist_signin)).get("access_token", "")
    )
    share = {"therapist_email": therapist_email, "scopes": ALL_SCOPES}
    grant = await w.send(201, "POST", "/v1/grants", json=share, headers=patient)
    await w.send(200, "GET", "/v1/grants", headers=therapist)
    await w.send(200, "GET", "/v1/patients", headers=therapist)
    minted = await w.send(200, "POST", f"/v1/grants/{grant.get('id')}/token", headers=therapist)
    reader = bearer(minted.get("access_token", ""))
    shared = f"/v1/patients/{patient_id}"
    for kind in ("sessions", "reflections", "checkins", "assessments"):
        await w.send(200, "GET", f"{shared}/{kind}", headers=reader)
    await w.send(200, "GET", f"{shared}/checkins/{checkin.get('id')}", headers=reader)
    await w.send(200, "GET", f"{shared}/summary", headers=reader)
    flag = (assessment.get("raised_flag") or {}).get("id")
    await w.send(200, "GET", f"{shared}/safety-flags", headers=reader)
    acknowledgement = f"{shared}/safety-flags/{flag}/acknowledgement"
    await w.send(200, "POST", acknowledgement, json={"note": "Called, safe"}, headers=reader)

    # The patient sees who read what, ends the sharing, and signs out: both are refused next.
    await w.send(200, "GET", "/v1/me/access-log", headers=patient)
    await w.send(204, "DELETE", f"/v1/grants/{grant.get('id')}", headers=patient)
    await w.send(401, "GET", f"{shared}/checkins", headers=reader)
    await w.send(200, "GET", "/v1/me/export", headers=patient)
    await w.send(200, "POST", "/v1/auth/revoke", data={"token": tokens.get("refresh_token", "")})
    await w.send(401, "POST", "/v1/checkins", json={"mood": 3}, headers=patient)
    return w.answers


async def invitation() -> tuple[str, str]:
    """A therapist's email and the operator's invitation code for it."""
    email = unique_email("therapist")
    return email, await invite(email, "Dr. Walk")
