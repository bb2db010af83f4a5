from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.journal import assert_problem
from tests.support.people import PASSWORD, Person, register, token, unique_email


def account_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": unique_email(),
        "password": PASSWORD,
        "display_name": "Sam",
        "role": "patient",
    }
    return {**body, **overrides}


async def test_register_returns_the_account_normalised(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post("/v1/accounts", json=account_body(email=f"  {email.upper()} "))
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert body["role"] == "patient"
    assert set(body) == {
        "id",
        "email",
        "display_name",
        "role",
        "time_zone",
        "verified",
        "clinic",
        "created_at",
        "updated_at",
    }
    assert (body["verified"], body["clinic"]) == (False, None)
    assert body["time_zone"] == "UTC"
    assert response.headers["location"] == "/v1/me"
    assert response.headers["etag"] == '"1"'


async def test_duplicate_email_is_409_whatever_its_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    assert (await client.post("/v1/accounts", json=account_body(email=email))).status_code == 201
    response = await client.post(
        "/v1/accounts", json=account_body(email=email.upper(), display_name="Other")
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    # The first account is untouched: its password still works and its role is unchanged.
    tokens = await token(client, email)
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["role"] == "patient"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "x" * 9}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"email": "not an email"}, "email"),
        ({"email": "a" * 250 + "@example.org"}, "email"),
        ({"role": "admin"}, "role"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"display_name": "nul\x00byte"}, "display_name"),
        ({"display_name": 42}, "display_name"),
        ({"is_admin": True}, "is_admin"),
    ],
)
async def test_invalid_registration_is_422_and_creates_nothing(
    client: httpx.AsyncClient, overrides: dict[str, object], field: str
) -> None:
    body = account_body(**overrides)
    response = await client.post("/v1/accounts", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422
    assert any(issue["loc"][-1] == field for issue in problem["errors"]), problem
    # The rejected input is never echoed back.
    assert PASSWORD not in response.text
    if isinstance(body["email"], str) and "@" in body["email"] and field != "email":
        refused = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
        )
        assert refused.status_code == 400


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"email": ', "application/json", 422),
        (b"[1, 2, 3]", "application/json", 422),
        (b"", "application/json", 422),
        # Not JSON at all: the media type is refused before the body is read.
        (b"email=a@b.org", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_malformed_bodies_get_a_problem(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int
) -> None:
    response = await client.post(
        "/v1/accounts", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    expected = {"type", "title", "status", "detail"} | ({"errors"} if status == 422 else set())
    assert expected <= set(response.json())


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_me_returns_own_account_with_etag(client: httpx.AsyncClient, patient: Person) -> None:
    response = await client.get("/v1/me", headers=patient.headers)
    assert response.status_code == 200
    assert response.json()["id"] == patient.id
    assert response.json()["email"] == patient.email
    assert response.headers["etag"] == '"1"'


async def test_patch_me_requires_if_match(client: httpx.AsyncClient, patient: Person) -> None:
    response = await client.patch("/v1/me", json={"display_name": "New"}, headers=patient.headers)
    assert response.status_code == 428
    assert (await client.get("/v1/me", headers=patient.headers)).json()[
        "display_name"
    ] == "Test patient"


async def test_patch_me_with_current_etag_then_stale(
    client: httpx.AsyncClient, patient: Person
) -> None:
    headers = {**patient.headers, "If-Match": '"1"'}
    first = await client.patch("/v1/me", json={"display_name": "  Renamed "}, headers=headers)
    assert first.status_code == 200
    assert first.json()["display_name"] == "Renamed"
    assert first.headers["etag"] == '"2"'
    stale = await client.patch("/v1/me", json={"display_name": "Lost"}, headers=headers)
    assert stale.status_code == 412
    assert (await client.get("/v1/me", headers=patient.headers)).json()["display_name"] == "Renamed"


async def test_patch_me_weak_etag_does_not_match(
    client: httpx.AsyncClient, patient: Person
) -> None:
    headers = {**patient.headers, "If-Match": 'W/"1"'}
    assert (
        await client.patch("/v1/me", json={"display_name": "X"}, headers=headers)
    ).status_code == 412
    headers["If-Match"] = "*"
    assert (
        await client.patch("/v1/me", json={"display_name": "X"}, headers=headers)
    ).status_code == 200


async def test_patch_me_refuses_unknown_fields_and_role_changes(
    client: httpx.AsyncClient, patient: Person
) -> None:
    headers = {**patient.headers, "If-Match": '"1"'}
    for body in ({"role": "therapist"}, {"email": "new@example.org"}, {"id": patient.id}):
        assert (await client.patch("/v1/me", json=body, headers=headers)).status_code == 422
    me = (await client.get("/v1/me", headers=patient.headers)).json()
    assert (me["role"], me["email"]) == ("patient", patient.email)


async def test_password_change_needs_current_and_ends_other_logins(
    client: httpx.AsyncClient,
) -> None:
    person = await register(client)
    other_login = await token(client, person.email)
    other_headers = {"Authorization": f"Bearer {other_login['access_token']}"}
    headers = {**person.headers, "If-Match": '"1"'}

    missing = await client.patch(
        "/v1/me", json={"password": "a brand new passphrase"}, headers=headers
    )
    assert missing.status_code == 422
    wrong = await client.patch(
        "/v1/me",
        json={"password": "a brand new passphrase", "current_password": "not it at all"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert (await client.get("/v1/me", headers=other_headers)).status_code == 200

    changed = await client.patch(
        "/v1/me",
        json={"password": "a brand new passphrase", "current_password": PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    assert (await client.get("/v1/me", headers=other_headers)).status_code == 401
    old = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": person.email, "password": PASSWORD},
    )
    assert old.status_code == 400
    await token(client, person.email, "a brand new passphrase")


async def test_registering_a_taken_email_makes_no_database_error(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    """A unique violation is written to PostgreSQL's own log with the email in it: no request
    may cause one. Every error the database raises passes SQLAlchemy's handle_error event."""
    raised: list[str] = []

    def record(context: Any) -> None:
        raised.append(type(context.original_exception).__name__)

    engine = app.state.engine.sync_engine
    event.listen(engine, "handle_error", record)
    try:
        for email in (patient.email, patient.email.upper()):
            taken = await client.post(
                "/v1/accounts",
                json={
                    "email": email,
                    "password": "another long passphrase",
                    "display_name": "Someone else",
                    "role": "patient",
                },
            )
            assert_problem(taken, 409)
    finally:
        event.remove(engine, "handle_error", record)
    assert raised == []
