"""Logs carry no personal data and no token: journal, grant and token flows run with canaries, and
every log line the app writes meanwhile is searched for them."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
from fastapi import FastAPI

from api.app import create_app
from api.logs import json_formatter
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.people import PASSWORD, register
from tests.support.sharing import bearer, give_grant, mint

CANARY = "zebra-canary-51f0"


async def test_no_canary_email_or_token_reaches_the_logs(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    patient = await register(client)
    therapist = await register(client, "therapist")
    secrets = {
        patient.email,
        therapist.email,
        patient.access_token,
        patient.refresh_token,
        PASSWORD,
    }

    await client.post(
        "/v1/accounts",
        json={
            "email": patient.email,
            "password": PASSWORD,
            "display_name": CANARY,
            "role": "patient",
        },
    )
    await client.post(
        "/v1/accounts",
        json={
            "email": f"{CANARY}@example.org",
            "password": "short",
            "display_name": CANARY,
            "role": "patient",
        },
    )
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email, "password": f"wrong-{CANARY}"},
    )
    session = (
        await client.post(
            "/v1/sessions",
            headers=patient.headers,
            json={
                "started_at": "2026-01-01T10:00:00Z",
                "route": "im",
                "setting": "clinic",
                "notes": CANARY,
            },
        )
    ).json()
    await client.post(
        "/v1/reflections",
        headers=patient.headers,
        json={
            "text": CANARY,
            "session_id": session["id"],
            "prompts": [{"prompt": CANARY, "answer": CANARY}],
        },
    )
    await client.post(
        "/v1/checkins",
        headers={**patient.headers, "Idempotency-Key": CANARY},
        json={"mood": 4, "note": CANARY},
    )
    await client.post(
        "/v1/checkins",
        headers={**patient.headers, "Idempotency-Key": CANARY},
        json={"mood": 5, "note": CANARY},
    )
    await client.post("/v1/intentions", headers=patient.headers, json={"text": CANARY * 200})
    await client.get(
        "/v1/checkins",
        params={"cursor": CANARY, "access_token": patient.access_token},
        headers=patient.headers,
    )
    grant = await give_grant(client, patient, therapist)
    token = await mint(client, therapist, grant["id"])
    secrets.add(token)
    await client.get(f"/v1/patients/{patient.id}/reflections", headers=bearer(token))
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    await client.get(f"/v1/patients/{patient.id}/reflections", headers=bearer(token))
    rotated = (
        await client.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": patient.refresh_token},
        )
    ).json()
    secrets.update({rotated["access_token"], rotated["refresh_token"]})
    await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": patient.refresh_token},
    )
    await client.post("/v1/auth/revoke", data={"token": rotated["access_token"]})
    await client.get("/v1/me", headers={"Authorization": f"Bearer {CANARY}"})

    output = log_lines.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) >= 18, (
        "the flows above were not logged at all: this test would prove nothing"
    )
    assert all(line["request_id"] for line in requests)
    assert {"/v1/patients/{patient_id}/reflections", "/v1/auth/token"} <= {
        line["route"] for line in requests
    }
    for secret in {CANARY, *secrets}:
        assert secret not in output, f"found in the logs: {secret[:12]}..."
    assert patient.id not in output  # a patient's id in a path is personal data too


async def test_an_unexpected_error_is_logged_by_type_and_place_only(
    tmp_path: Path, settings: Settings, log_lines: io.StringIO
) -> None:
    app: FastAPI = create_app(make_settings(tmp_path, settings.database_url))

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError(f"Key (email)=({CANARY}@example.org) already exists")

    async with app.router.lifespan_context(app):
        # The lifespan configured logging afresh: put the capturing handler back.
        logging.getLogger().addHandler(logging.StreamHandler(log_lines))
        logging.getLogger().handlers[-1].setFormatter(json_formatter())
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/boom", headers={"X-Request-ID": "trace-1"})).status_code == 500
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (error,) = [line for line in lines if line.get("event") == "unhandled exception"]
    assert error["error_type"] == "builtins.ValueError"
    assert any("in boom" in frame for frame in error["frames"])
    assert error["request_id"] == "trace-1"
    assert CANARY not in log_lines.getvalue()
