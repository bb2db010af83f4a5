"""Rate limits: the token endpoint per address and per account, a budget per token elsewhere,
counted in memory or, with REDIS_URL, in Redis shared by every process."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import coredis
import httpx
import pytest

from api.app import create_app
from api.crypto import load_cipher
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client
from tests.support.journal import assert_problem
from tests.support.people import PASSWORD, register

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def limited(tmp_path: Path, settings: Settings) -> Client:
    @asynccontextmanager
    async def start(**limits: str) -> AsyncIterator[httpx.AsyncClient]:
        overrides = {"rate_limit_key_prefix": f"test-{uuid.uuid4().hex}", **limits}
        app = create_app(
            make_settings(tmp_path / uuid.uuid4().hex, settings.database_url, **overrides)
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with conforming_client(transport=transport, base_url="http://testserver") as http:
                yield http

    return start


# Budgets in these tests are per hour, not per minute: the limiter's sliding window weighs the
# last window's count down as the next begins, so a test that happened to straddle the turn of a
# minute saw its last request let through (CI did, once). An hour makes that all but impossible.


def assert_limited(response: httpx.Response) -> None:
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["cache-control"] == "no-store"


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )


async def test_token_endpoint_is_limited_per_address(limited: Client) -> None:
    async with limited(rate_limit_token_per_address="3/hour") as client:
        person = await register(client)  # one sign-in spent here
        assert (await sign_in(client, person.email)).status_code == 200
        assert (
            await sign_in(client, "someone-else@example.org", "wrong password")
        ).status_code == 400
        assert_limited(await sign_in(client, person.email))


async def test_token_endpoint_is_limited_per_account(limited: Client) -> None:
    async with limited(rate_limit_token_per_account="2/hour") as client:
        person = await register(client)
        other = await register(client)
        assert (await sign_in(client, person.email.upper(), "guess number one")).status_code == 400
        refused = await sign_in(client, person.email, PASSWORD)
        assert_limited(refused)
        # Even the right password waits: the limit is on the account, not the guess.
        assert "access_token" not in refused.text
        assert (await sign_in(client, other.email)).status_code == 200


async def test_every_other_request_spends_from_its_tokens_budget(limited: Client) -> None:
    async with limited(rate_limit_per_token="4/hour") as client:
        first, second = await register(client), await register(client)
        answers = [await client.get("/v1/me", headers=first.headers) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "4"
        assert_limited(answers[4])
        assert (await client.get("/v1/me", headers=second.headers)).status_code == 200
        # Health and keys are never limited.
        assert (await client.get("/healthz", headers=first.headers)).status_code == 200
        assert (
            await client.get("/.well-known/jwks.json", headers=first.headers)
        ).status_code == 200


async def test_anonymous_requests_spend_from_their_address(limited: Client) -> None:
    async with limited(rate_limit_per_address="2/hour") as client:
        statuses = [(await client.post("/v1/accounts", json={})).status_code for _ in range(3)]
        assert statuses == [422, 422, 429]


@pytest.mark.skipif(
    not REDIS_URL, reason="set TEST_REDIS_URL (CI does) to test counters shared through Redis"
)
async def test_processes_share_counters_through_redis(tmp_path: Path, settings: Settings) -> None:
    overrides = {
        "redis_url": REDIS_URL,
        "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}",
        "rate_limit_per_token": "3/hour",
    }
    # Two processes of one deployment: the same database and the same signing keys.
    first_app = create_app(make_settings(tmp_path, settings.database_url, **overrides))
    second_app = create_app(make_settings(tmp_path, settings.database_url, **overrides))
    async with (
        first_app.router.lifespan_context(first_app),
        second_app.router.lifespan_context(second_app),
        conforming_client(
            transport=httpx.ASGITransport(app=first_app), base_url="http://one"
        ) as one,
        conforming_client(
            transport=httpx.ASGITransport(app=second_app), base_url="http://two"
        ) as two,
    ):
        person = await register(one)
        assert (await one.get("/v1/me", headers=person.headers)).status_code == 200
        assert (await two.get("/v1/me", headers=person.headers)).status_code == 200
        assert (await one.get("/v1/me", headers=person.headers)).status_code == 200
        assert_limited(await two.get("/v1/me", headers=person.headers))


async def test_an_unreachable_redis_lets_requests_through(limited: Client) -> None:
    async with limited(redis_url="redis://127.0.0.1:9/0", rate_limit_per_token="1/hour") as client:
        statuses = [(await client.get("/healthz")).status_code] + [
            (await client.post("/v1/accounts", json={})).status_code for _ in range(3)
        ]
        assert statuses == [200, 422, 422, 422]


# --- walk-arounds found by an outside attack: each now spends from the budget it should ---------


def respellings(email: str) -> list[str]:
    """Spellings of ``email`` that the account lookup takes to the same account: a fullwidth
    letter and a mathematical letter in the domain, which IDNA (UTS #46) maps back."""
    local, _, domain = email.partition("@")
    assert domain == "example.org"
    return [
        f"{local}@\uff45xample.org",
        f"{local}@example.or\U0001d558",
        f" {local.upper()}@EXAMPLE.ORG",
    ]


async def test_respelled_addresses_share_the_accounts_sign_in_budget(limited: Client) -> None:
    async with limited(rate_limit_token_per_account="4/hour") as client:
        person = await register(client)  # one sign-in spent here
        spellings = respellings(person.email)
        # Each spelling reaches the account: with the right password it signs in.
        assert (await sign_in(client, spellings[0])).status_code == 200
        assert (await sign_in(client, spellings[1], "wrong guess one")).status_code == 400
        assert (await sign_in(client, spellings[2], "wrong guess two")).status_code == 400
        assert_limited(await sign_in(client, person.email))
        for spelling in spellings:
            assert_limited(await sign_in(client, spelling, "another guess"))


async def test_unverified_authorization_headers_spend_the_addresss_budget(
    limited: Client,
) -> None:
    async with limited(rate_limit_per_address="3/hour") as client:
        statuses = [
            (
                await client.post(
                    "/v1/accounts", json={}, headers={"Authorization": f"Bearer junk{i}"}
                )
            ).status_code
            for i in range(4)
        ]
        assert statuses == [422, 422, 422, 429]
        assert_limited(await client.post("/v1/accounts", json={}, headers={"Authorization": "x"}))


async def test_one_token_is_one_budget_however_its_scheme_is_written(limited: Client) -> None:
    async with limited(rate_limit_per_token="3/hour") as client:
        person = await register(client)
        answers = [
            await client.get("/v1/me", headers={"Authorization": f"{scheme} {person.access_token}"})
            for scheme in ("Bearer", "bearer", "BEARER", "bEaReR")
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]


async def test_every_password_check_spends_the_accounts_sign_in_budget(limited: Client) -> None:
    async with limited(rate_limit_token_per_account="3/hour") as client:
        person = await register(client)  # one sign-in spent here
        me = await client.get("/v1/me", headers=person.headers)
        change = {"password": "a brand new passphrase", "current_password": "a wrong guess"}
        patch_headers = {**person.headers, "If-Match": me.headers["etag"]}
        wrong_patch = await client.patch("/v1/me", json=change, headers=patch_headers)
        assert wrong_patch.status_code == 422
        wrong_erase = await client.request(
            "DELETE", "/v1/me", json={"password": "another wrong guess"}, headers=person.headers
        )
        assert wrong_erase.status_code == 403
        # The budget is spent: no door checks another password for this account this minute.
        assert_limited(await client.patch("/v1/me", json=change, headers=patch_headers))
        assert_limited(
            await client.request(
                "DELETE", "/v1/me", json={"password": PASSWORD}, headers=person.headers
            )
        )
        assert_limited(await sign_in(client, person.email))
        # Changes without a password are not password checks.
        renamed = await client.patch(
            "/v1/me", json={"display_name": "Still me"}, headers=patch_headers
        )
        assert renamed.status_code == 200


@pytest.mark.skipif(
    not REDIS_URL, reason="set TEST_REDIS_URL (CI does) to read the keys kept in Redis"
)
async def test_redis_keys_cannot_be_linked_to_an_email_without_the_servers_secret(
    tmp_path: Path, settings: Settings
) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    app_settings = make_settings(
        tmp_path, settings.database_url, redis_url=REDIS_URL, rate_limit_key_prefix=prefix
    )
    app = create_app(app_settings)
    async with (
        app.router.lifespan_context(app),
        conforming_client(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        person = await register(client)
        assert (await sign_in(client, person.email, "a wrong guess")).status_code == 400
    # The oracle: HMAC-SHA256 of the email under the secret derived from the encryption key.
    secret = load_cipher(app_settings).derive(b"rate-limit keys")
    keyed = hmac.new(secret, person.email.encode(), hashlib.sha256).hexdigest()[:32]
    plain = hashlib.sha256(person.email.encode()).hexdigest()[:32]
    redis = coredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = [key async for key in redis.scan_iter(match=f"*{prefix}*")]
    assert any(keyed in key for key in keys), keys
    assert not any(plain in key or person.email in key for key in keys), keys
