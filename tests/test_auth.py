from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api.auth.tokens import CLOCK_SKEW
from tests.support.clock import Clock
from tests.support.people import PASSWORD, Person, register, unique_email
from tests.support.sharing import give_grant, mint


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def test_password_grant_returns_an_oauth_token_response(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email.upper(), "password": PASSWORD},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"].startswith("rt_")
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient, patient: Person
) -> None:
    wrong_password = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email, "password": "not the password"},
    )
    unknown_email = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": unique_email(), "password": "not the password"},
    )
    assert wrong_password.status_code == unknown_email.status_code == 400
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["error"] == "invalid_grant"
    assert wrong_password.headers["content-type"] == "application/problem+json"


async def test_unknown_email_still_runs_a_password_hash(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # The even-timing guarantee, checked by what runs rather than by a clock: an unknown email
    # costs one Argon2 verification, exactly like a wrong password.
    passwords = app.state.passwords
    calls: list[str] = []
    original = passwords._hash.verify

    def counting_verify(password: str, hash_: str) -> bool:
        calls.append(hash_)
        return bool(original(password, hash_))

    passwords._hash.verify = counting_verify
    try:
        await client.post(
            "/v1/auth/token",
            data={
                "grant_type": "password",
                "username": unique_email(),
                "password": "whatever it is",
            },
        )
    finally:
        passwords._hash.verify = original
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "invalid_request"),
        ({"grant_type": "password", "username": "a@b.org"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        (
            {"grant_type": "password", "username": "a@b.org", "password": "x" * 5000},
            "invalid_request",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "rt_unknown"}, "invalid_grant"),
    ],
)
async def test_token_request_errors(
    client: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    response = await client.post("/v1/auth/token", data=form)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error
    assert body["status"] == 400
    assert body["detail"] == body["error_description"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
async def test_a_bad_idempotency_key_on_the_token_endpoint_is_an_oauth_error(
    client: httpx.AsyncClient, patient: Person, key: str
) -> None:
    """Found by schemathesis after the merge: the key's own 400 lacked RFC 6749's `error`."""
    form = {"grant_type": "password", "username": patient.email, "password": PASSWORD}
    response = await client.post(
        "/v1/auth/token", data=form, headers={b"Idempotency-Key": key.encode("utf-8")}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"] == response.json()["detail"]
    assert "Idempotency-Key" in response.json()["detail"]


async def test_json_body_to_the_token_endpoint_is_an_invalid_request(
    client: httpx.AsyncClient, patient: Person
) -> None:
    # The wrong media type is a 415 (RFC 9110), still with RFC 6749's `error` for OAuth clients.
    for path in ("/v1/auth/token", "/v1/auth/revoke"):
        response = await client.post(
            path,
            json={"grant_type": "password", "username": patient.email, "password": PASSWORD},
        )
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_request"
        assert "application/x-www-form-urlencoded" in response.json()["error_description"]


async def test_refresh_rotates_and_the_new_pair_works(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await refresh(client, patient.refresh_token)
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != patient.refresh_token
    assert (await client.get("/v1/me", headers=bearer(rotated["access_token"]))).status_code == 200
    assert (await refresh(client, rotated["refresh_token"])).status_code == 200


async def test_reusing_a_rotated_refresh_token_ends_the_whole_login(
    client: httpx.AsyncClient, patient: Person
) -> None:
    second = (await refresh(client, patient.refresh_token)).json()
    third = (await refresh(client, second["refresh_token"])).json()

    reuse = await refresh(client, patient.refresh_token)
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"

    # Every token of the family is dead: the newest refresh token and every access token.
    assert (await refresh(client, third["refresh_token"])).status_code == 400
    for access in (patient.access_token, second["access_token"], third["access_token"]):
        assert (await client.get("/v1/me", headers=bearer(access))).status_code == 401


async def test_a_token_past_its_expiry_is_refused_though_it_was_verified_before(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    # A verified token is remembered for the rest of its life (api.auth.tokens): the memory
    # must end with the token, not only a fresh verification.
    issued = clock.at
    patient, therapist = await register(client), await register(client, "therapist")
    read = await mint(client, therapist, (await give_grant(client, patient, therapist))["id"])
    doors = [
        (patient.access_token, "/v1/me"),
        (read, f"/v1/patients/{patient.id}/checkins"),
    ]
    for token, url in doors:
        assert (await client.get(url, headers=bearer(token))).status_code == 200
        expires = datetime.fromtimestamp(
            jwt.decode(token, options={"verify_signature": False})["exp"], UTC
        )
        # The last instant the leeway for clock skew still covers, then the first it does not.
        clock.set(expires + CLOCK_SKEW - timedelta(microseconds=1))
        assert (await client.get(url, headers=bearer(token))).status_code == 200
        clock.set(expires + CLOCK_SKEW)
        refused = await client.get(url, headers=bearer(token))
        assert refused.status_code == 401, url
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        clock.set(issued)


async def test_reuse_ends_only_that_login(client: httpx.AsyncClient) -> None:
    person = await register(client)
    other = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": person.email, "password": PASSWORD},
    )
    await refresh(client, person.refresh_token)
    await refresh(client, person.refresh_token)
    assert (await client.get("/v1/me", headers=person.headers)).status_code == 401
    assert (
        await client.get("/v1/me", headers=bearer(other.json()["access_token"]))
    ).status_code == 200


async def test_revoking_the_refresh_token_ends_its_access_tokens(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/auth/revoke", data={"token": patient.refresh_token, "token_type_hint": "refresh_token"}
    )
    assert response.status_code == 200
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 401
    assert (await refresh(client, patient.refresh_token)).status_code == 400


async def test_revoking_the_access_token_ends_the_login(
    client: httpx.AsyncClient, patient: Person
) -> None:
    assert (
        await client.post("/v1/auth/revoke", data={"token": patient.access_token})
    ).status_code == 200
    me = await client.get("/v1/me", headers=patient.headers)
    assert me.status_code == 401
    assert me.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert (await refresh(client, patient.refresh_token)).status_code == 400


@pytest.mark.parametrize("garbage", ["rt_nothing", "not a token", "a.b.c", "x" * 4096])
async def test_revoking_unknown_tokens_answers_200_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, garbage: str
) -> None:
    assert (await client.post("/v1/auth/revoke", data={"token": garbage})).status_code == 200
    assert (await client.get("/v1/me", headers=patient.headers)).status_code == 200


async def test_revoke_without_a_token_field_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/revoke", data={})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_jwks_publishes_the_signing_key(client: httpx.AsyncClient, patient: Person) -> None:
    import jwt

    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    header = jwt.get_unverified_header(patient.access_token)
    (jwk,) = [key for key in keys if key["kid"] == header["kid"]]
    # An integrator can verify our token with nothing but the published key.
    public_key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        patient.access_token,
        public_key,
        algorithms=["EdDSA"],
        audience="kap-journal-api",
        issuer="kap-journal",
    )
    assert claims["sub"] == patient.id
    assert claims["role"] == "patient"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert {"iss", "aud", "sub", "iat", "exp", "jti", "typ", "role", "sid"} <= set(claims)
