"""Rate limits: the token endpoint per address and per account, a budget per token elsewhere,
counted in memory or, with REDIS_URL, in Redis shared by every process."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.conftest import make_settings
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
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield http

    return start


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
    async with limited(rate_limit_token_per_address="3/minute") as client:
        person = await register(client)  # one sign-in spent here
        assert (await sign_in(client, person.email)).status_code == 200
        assert (
            await sign_in(client, "someone-else@example.org", "wrong password")
        ).status_code == 400
        assert_limited(await sign_in(client, person.email))


async def test_token_endpoint_is_limited_per_account(limited: Client) -> None:
    async with limited(rate_limit_token_per_account="2/minute") as client:
        person = await register(client)
        other = await register(client)
        assert (await sign_in(client, person.email.upper(), "guess number one")).status_code == 400
        refused = await sign_in(client, person.email, PASSWORD)
        assert_limited(refused)
        # Even the right password waits: the limit is on the account, not the guess.
        assert "access_token" not in refused.text
        assert (await sign_in(client, other.email)).status_code == 200


async def test_every_other_request_spends_from_its_tokens_budget(limited: Client) -> None:
    async with limited(rate_limit_per_token="4/minute") as client:
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
    async with limited(rate_limit_per_address="2/minute") as client:
        statuses = [(await client.post("/v1/accounts", json={})).status_code for _ in range(3)]
        assert statuses == [422, 422, 429]


@pytest.mark.skipif(
    not REDIS_URL, reason="set TEST_REDIS_URL (CI does) to test counters shared through Redis"
)
async def test_processes_share_counters_through_redis(tmp_path: Path, settings: Settings) -> None:
    overrides = {
        "redis_url": REDIS_URL,
        "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}",
        "rate_limit_per_token": "3/minute",
    }
    # Two processes of one deployment: the same database and the same signing keys.
    first_app = create_app(make_settings(tmp_path, settings.database_url, **overrides))
    second_app = create_app(make_settings(tmp_path, settings.database_url, **overrides))
    async with (
        first_app.router.lifespan_context(first_app),
        second_app.router.lifespan_context(second_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=first_app), base_url="http://one"
        ) as one,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second_app), base_url="http://two"
        ) as two,
    ):
        person = await register(one)
        assert (await one.get("/v1/me", headers=person.headers)).status_code == 200
        assert (await two.get("/v1/me", headers=person.headers)).status_code == 200
        assert (await one.get("/v1/me", headers=person.headers)).status_code == 200
        assert_limited(await two.get("/v1/me", headers=person.headers))


async def test_an_unreachable_redis_lets_requests_through(limited: Client) -> None:
    async with limited(
        redis_url="redis://127.0.0.1:9/0", rate_limit_per_token="1/minute"
    ) as client:
        statuses = [(await client.get("/healthz")).status_code] + [
            (await client.post("/v1/accounts", json={})).status_code for _ in range(3)
        ]
        assert statuses == [200, 422, 422, 422]
