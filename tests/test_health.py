from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api.app import create_app
from tests.conftest import make_settings


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
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            async with asyncio.timeout(10):
                ready = await client.get("/readyz")
            live = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"] == "5"
    assert live.status_code == 200
