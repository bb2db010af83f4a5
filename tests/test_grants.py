"""Grants: a patient's consent, given, listed, ended, and exchanged for read tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from api.models import Grant
from tests.support.clock import Clock
from tests.support.people import Person, register
from tests.support.sharing import ALL_SCOPES, bearer, give_grant, mint


async def test_a_patient_grants_a_therapist(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist, ["checkins:read", "summary:read"])
    assert grant["state"] == "active"
    assert grant["scopes"] == ["checkins:read", "summary:read"]
    assert grant["therapist"]["email"] == therapist.email
    assert grant["patient"]["id"] == patient.id
    lifetime = datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(
        grant["created_at"]
    )
    assert lifetime == timedelta(days=90)


@pytest.mark.parametrize(
    "overrides",
    [
        {"scopes": []},
        {"scopes": ["checkins:write"]},
        {"scopes": ["checkins:read", "checkins:read"]},
        {"expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        {"expires_at": (datetime.now(UTC) + timedelta(days=366)).isoformat()},
        {"expires_at": "2030-01-01T00:00:00"},
        {"therapist_email": "nobody-here@example.org"},
        {"role": "therapist"},
    ],
)
async def test_invalid_grants_are_422_and_create_nothing(
    client: httpx.AsyncClient, patient: Person, therapist: Person, overrides: dict[str, Any]
) -> None:
    body = {"therapist_email": therapist.email, "scopes": ["checkins:read"], **overrides}
    response = await client.post("/v1/grants", json=body, headers=patient.headers)
    assert response.status_code == 422, response.text
    assert (await client.get("/v1/grants", headers=patient.headers)).json()["items"] == []


async def test_a_grant_names_a_therapist_account(
    client: httpx.AsyncClient, patient: Person
) -> None:
    other_patient = await register(client)
    as_patient = await client.post(
        "/v1/grants",
        json={"therapist_email": other_patient.email, "scopes": ["checkins:read"]},
        headers=patient.headers,
    )
    unknown = await client.post(
        "/v1/grants",
        json={"therapist_email": "no-one-at-all@example.org", "scopes": ["checkins:read"]},
        headers=patient.headers,
    )
    assert as_patient.status_code == unknown.status_code == 422
    assert as_patient.json() == unknown.json()


async def test_therapists_cannot_give_grants(client: httpx.AsyncClient, therapist: Person) -> None:
    other = await register(client, "therapist")
    response = await client.post(
        "/v1/grants",
        json={"therapist_email": other.email, "scopes": ["checkins:read"]},
        headers=therapist.headers,
    )
    assert response.status_code == 403


async def test_each_party_lists_its_own_grants_with_states(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    stranger = await register(client)
    active = await give_grant(client, patient, therapist)
    revoked = await give_grant(client, patient, therapist)
    await client.delete(f"/v1/grants/{revoked['id']}", headers=patient.headers)
    expiring = await give_grant(
        client,
        patient,
        therapist,
        expires_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
    )
    given = (await client.get("/v1/grants", headers=patient.headers)).json()["items"]
    received = (await client.get("/v1/grants", headers=therapist.headers)).json()["items"]
    assert (
        [g["id"] for g in given]
        == [g["id"] for g in received]
        == [expiring["id"], revoked["id"], active["id"]]
    )
    states = {g["id"]: g["state"] for g in given}
    assert states[active["id"]] == "active"
    assert states[revoked["id"]] == "revoked"
    assert (await client.get("/v1/grants", headers=stranger.headers)).json()["items"] == []
    assert (
        await client.get(f"/v1/grants/{active['id']}", headers=stranger.headers)
    ).status_code == 404


async def test_grants_page(client: httpx.AsyncClient, patient: Person, therapist: Person) -> None:
    made = [(await give_grant(client, patient, therapist))["id"] for _ in range(5)]
    first = (await client.get("/v1/grants", params={"limit": 2}, headers=patient.headers)).json()
    second = (
        await client.get(
            "/v1/grants",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=patient.headers,
        )
    ).json()
    third = (
        await client.get(
            "/v1/grants",
            params={"limit": 2, "cursor": second["next_cursor"]},
            headers=patient.headers,
        )
    ).json()
    ids = [g["id"] for page in (first, second, third) for g in page["items"]]
    assert ids == list(reversed(made))
    assert third["next_cursor"] is None


async def test_grants_given_in_the_same_instant_are_ordered_by_id(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person, clock: Clock
) -> None:
    # The clock stands still: every grant has the same created_at, so the id alone orders
    # them and carries the cursor. Two full pages, and nothing after the second.
    made = [(await give_grant(client, patient, therapist))["id"] for _ in range(4)]
    pages: list[list[str]] = []
    cursor: str | None = None
    while len(pages) < 3 and (cursor or not pages):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/grants", params=params, headers=patient.headers)).json()
        pages.append([g["id"] for g in page["items"]])
        cursor = page["next_cursor"]
    newest_first = sorted(made, key=uuid.UUID, reverse=True)
    assert pages == [newest_first[:2], newest_first[2:]]
    # The export lists them oldest first, the id deciding between equal times; one given a
    # minute earlier comes first whatever its id.
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Grant)
            .where(Grant.id == uuid.UUID(newest_first[0]))
            .values(created_at=clock.at - timedelta(minutes=1))
        )
    exported = (await client.get("/v1/me/export", headers=patient.headers)).json()["grants"]
    assert [g["id"] for g in exported] == [newest_first[0], *reversed(newest_first[1:])]


async def test_revoking_and_giving_up(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    by_patient = await give_grant(client, patient, therapist)
    by_therapist = await give_grant(client, patient, therapist)
    assert (
        await client.delete(f"/v1/grants/{by_patient['id']}", headers=patient.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/v1/grants/{by_patient['id']}", headers=patient.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/v1/grants/{by_therapist['id']}", headers=therapist.headers)
    ).status_code == 204
    ended = {
        g["id"]: g
        for g in (await client.get("/v1/grants", headers=patient.headers)).json()["items"]
    }
    assert (ended[by_patient["id"]]["state"], ended[by_patient["id"]]["revoked_by"]) == (
        "revoked",
        "patient",
    )
    assert ended[by_therapist["id"]]["revoked_by"] == "therapist"
    stranger = await register(client, "therapist")
    other = await give_grant(client, patient, therapist)
    assert (
        await client.delete(f"/v1/grants/{other['id']}", headers=stranger.headers)
    ).status_code == 404
    assert (await client.get(f"/v1/grants/{other['id']}", headers=patient.headers)).json()[
        "state"
    ] == "active"


async def test_minting_a_read_token(
    app: Any, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist, ["checkins:read", "reflections:read"])
    response = await client.post(
        f"/v1/grants/{grant['id']}/token", data={}, headers=therapist.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "checkins:read reflections:read"
    assert body["patient_id"] == patient.id
    assert body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["typ"] == "patient_read"
    assert (claims["sub"], claims["patient"], claims["grant"]) == (
        therapist.id,
        patient.id,
        grant["id"],
    )
    assert claims["exp"] - claims["iat"] == 900

    narrow = await client.post(
        f"/v1/grants/{grant['id']}/token",
        data={"scope": "checkins:read"},
        headers=therapist.headers,
    )
    assert narrow.json()["scope"] == "checkins:read"
    beyond = await client.post(
        f"/v1/grants/{grant['id']}/token",
        data={"scope": "checkins:read summary:read"},
        headers=therapist.headers,
    )
    assert beyond.status_code == 403
    nonsense = await client.post(
        f"/v1/grants/{grant['id']}/token", data={"scope": "all"}, headers=therapist.headers
    )
    assert nonsense.status_code == 400


async def test_a_read_token_never_outlives_its_grant(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    ends = datetime.now(UTC) + timedelta(minutes=5)
    grant = await give_grant(client, patient, therapist, expires_at=ends.isoformat())
    token = await mint(client, therapist, grant["id"])
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= ends.timestamp()


async def test_who_may_mint(client: httpx.AsyncClient, patient: Person, therapist: Person) -> None:
    grant = await give_grant(client, patient, therapist)
    other_therapist = await register(client, "therapist")
    assert (
        await client.post(f"/v1/grants/{grant['id']}/token", headers=patient.headers)
    ).status_code == 403
    assert (
        await client.post(f"/v1/grants/{grant['id']}/token", headers=other_therapist.headers)
    ).status_code == 404
    assert (
        await client.post(f"/v1/grants/{uuid.uuid4()}/token", headers=therapist.headers)
    ).status_code == 404
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert (
        await client.post(f"/v1/grants/{grant['id']}/token", headers=therapist.headers)
    ).status_code == 403


async def test_the_therapist_sees_patients_with_active_grants(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    other = await register(client)
    kept = await give_grant(client, patient, therapist, ["checkins:read"])
    ended = await give_grant(client, other, therapist)
    await client.delete(f"/v1/grants/{ended['id']}", headers=other.headers)
    listed = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert [(p["patient_id"], p["grant_id"], p["scopes"]) for p in listed] == [
        (patient.id, kept["id"], ["checkins:read"])
    ]
    assert listed[0]["display_name"] == "Test patient"
    assert (await client.get("/v1/patients", headers=patient.headers)).status_code == 403
    token = await mint(client, therapist, kept["id"])
    assert (await client.get("/v1/patients", headers=bearer(token))).status_code == 401


async def test_patients_are_listed_by_name(client: httpx.AsyncClient, therapist: Person) -> None:
    names = ["Zoe Last", "Mia Middle", "Ada First"]
    for name in names:
        await give_grant(client, await register(client, display_name=name), therapist)
    listed = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert [p["display_name"] for p in listed] == sorted(names)


async def test_all_scopes_are_offered(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    assert grant["scopes"] == sorted(ALL_SCOPES)
