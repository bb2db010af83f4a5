from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api.app import create_app
from tests.conftest import make_settings
from tests.support.conformance import conforming_client


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, so every connection attempt is refused.
    settings = make_settings(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:9/none")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with conforming_client(transport=transport, base_url="http://testserver") as client:
            async with asyncio.timeout(10):
                ready = await client.get("/readyz")
            live = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"] == "5"
    assert live.status_code == 200


async def test_data_routes_are_503_with_retry_after_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:9/none", db_pool_timeout_seconds=1.0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with conforming_client(transport=transport, base_url="http://testserver") as client:
            async with asyncio.timeout(20):
                responses = [
                    await client.post(
                        "/v1/accounts",
                        json={
                            "email": "x@example.org",
                            "password": "a long passphrase",
                            "display_name": "X",
                            "role": "patient",
                        },
                    ),
                    await client.post(
                        "/v1/auth/token",
                        data={
                            "grant_type": "password",
                            "username": "x@example.org",
                            "password": "whatever",
                        },
                    ),
                    await client.get(
                        "/v1/me", headers={"Authorization": "Bearer not-even-a-token"}
                    ),
                ]
    create, token, me = responses
    # Every request that needs the database says so, whatever else is wrong with it.
    for response in (create, token, me):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"] == "application/problem+json"
