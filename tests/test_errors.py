"""Every error, ours or the framework's, is RFC 9457 problem+json; the body limit holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client
from tests.support.journal import assert_problem


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/accounts")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


async def test_declared_oversize_body_is_a_413_problem(client: httpx.AsyncClient) -> None:
    body = b'{"email": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/accounts", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


async def test_streamed_oversize_body_is_a_413_problem(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post(
        "/v1/accounts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_streamed_small_body_reaches_the_route(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "x@example.org",'
        yield b' "password": "short"}'

    response = await client.post(
        "/v1/accounts", content=chunks(), headers={"content-type": "application/json"}
    )
    # The body arrived whole: validation, not framing, is what refused it.
    body = assert_problem(response, 422)
    assert {tuple(issue["loc"]) for issue in body["errors"]} >= {
        ("body", "password"),
        ("body", "role"),
    }


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/healthz"),
        await client.get("/v1/me"),
        await client.get("/nope"),
    ):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
async def crashing_client(tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path, settings.database_url))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail /srv/app/api/boom.py")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with conforming_client(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_an_unexpected_exception_is_a_500_problem_with_nothing_inside(
    crashing_client: httpx.AsyncClient,
) -> None:
    response = await crashing_client.get("/boom")
    assert_problem(response, 500)
    # Headed like every other answer.
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert ".py" not in response.text


@pytest.fixture
async def cors_client(tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(tmp_path, settings.database_url, cors_origins=["https://app.example.org"])
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with conforming_client(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_cors_answers_only_the_allowlisted_origin(cors_client: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "if-match",
    }
    allowed = await cors_client.options(
        "/v1/me", headers={"Origin": "https://app.example.org", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    refused = await cors_client.options(
        "/v1/me", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = await cors_client.get("/healthz", headers={"Origin": "https://app.example.org"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_no_cors_without_an_allowlist(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in response.headers
