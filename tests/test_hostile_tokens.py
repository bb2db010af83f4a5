"""A corpus of hostile tokens: every one must be refused with a 401 problem, and none may crash."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import delete

from api.models import Account
from tests.support.people import Person, register
from tests.support.tokens import (
    flip_signature_bit,
    hs256_with_public_key,
    sign,
    unsigned,
    valid_claims,
)

Forge = Callable[[FastAPI, dict[str, Any]], str]


def without(*names: str) -> Forge:
    return lambda app, claims: sign(app, {k: v for k, v in claims.items() if k not in names})


def with_claims(**changes: Any) -> Forge:
    return lambda app, claims: sign(app, {**claims, **changes})


def with_headers(**headers: Any) -> Forge:
    return lambda app, claims: sign(app, claims, headers=headers)


NOW = int(time.time())

HOSTILE: dict[str, Forge] = {
    "alg none": lambda app, claims: unsigned({"alg": "none", "typ": "at+jwt"}, claims),
    "alg none with our kid": lambda app, claims: unsigned(
        {
            "alg": "none",
            "typ": "at+jwt",
            "kid": jwt.get_unverified_header(sign(app, claims))["kid"],
        },
        claims,
    ),
    "HS256 keyed with the public key": hs256_with_public_key,
    "no exp": without("exp"),
    "expired": with_claims(iat=NOW - 3600, exp=NOW - 1800),
    "nbf in the future": with_claims(nbf=NOW + 3600),
    "iat in the future": with_claims(iat=NOW + 3600, exp=NOW + 4000),
    "wrong aud": with_claims(aud="someone-else"),
    "aud list with another": with_claims(aud=["someone-else"]),
    # Ours is a string; a list, even of ours alone, is a token this service never issued.
    "aud list with ours": lambda app, claims: sign(app, {**claims, "aud": [claims["aud"]]}),
    "missing aud": without("aud"),
    "wrong iss": with_claims(iss="https://evil.example"),
    "missing iss": without("iss"),
    "missing sub": without("sub"),
    "sub not a uuid": with_claims(sub="1 OR 1=1"),
    "missing iat": without("iat"),
    "missing jti": without("jti"),
    "missing typ": without("typ"),
    "wrong typ": with_claims(typ="refresh"),
    "missing role": without("role"),
    "missing sid": without("sid"),
    "sid of no login": with_claims(sid=str(uuid.uuid4())),
    "unknown kid": with_headers(kid="no-such-key"),
    "kid with a path": with_headers(kid="../../../../etc/passwd"),
    "kid with SQL": with_headers(kid="' OR '1'='1' --"),
    "kid not a string": with_headers(kid=12345),
    "unknown crit header": with_headers(crit=["urn:example:unknown"]),
    "header typ JWT": with_headers(typ="JWT"),
    "flipped signature bit": lambda app, claims: flip_signature_bit(sign(app, claims)),
    "signed by another Ed25519 key with our kid": lambda app, claims: sign(
        app, claims, key=Ed25519PrivateKey.generate()
    ),
    "not a JWT": lambda app, claims: "definitely-not-a-token",
    "two segments": lambda app, claims: ".".join(sign(app, claims).split(".")[:2]),
    "empty": lambda app, claims: "",
}


@pytest.fixture
async def victim(client: httpx.AsyncClient) -> tuple[Person, str]:
    person = await register(client)
    login_id = jwt.decode(person.access_token, options={"verify_signature": False})["sid"]
    return person, login_id


async def test_the_forger_makes_a_token_that_works(
    app: FastAPI, client: httpx.AsyncClient, victim: tuple[Person, str]
) -> None:
    # Without this, every refusal below could be the forger's fault rather than the server's.
    person, login_id = victim
    token = sign(app, valid_claims(app, person.id, login_id))
    assert (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, victim: tuple[Person, str], name: str
) -> None:
    person, login_id = victim
    token = HOSTILE[name](app, valid_claims(app, person.id, login_id))
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, name
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert person.email not in response.text


async def test_a_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {patient.refresh_token}"}
    )
    assert response.status_code == 401


async def test_a_token_in_the_query_string_is_not_accepted(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.get("/v1/me", params={"access_token": patient.access_token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"]
)
async def test_garbage_authorization_headers(client: httpx.AsyncClient, authorization: str) -> None:
    response = await client.get("/v1/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_of_a_deleted_account_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    person = await register(client)
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(delete(Account).where(Account.id == uuid.UUID(person.id)))
    response = await client.get("/v1/me", headers=person.headers)
    assert response.status_code == 401
