"""The per-process cap on requests served at once (the slots of api.middleware.Gate).

Driven with an inner app that holds each request until the test lets it go, so what is inside
and what is waiting is known exactly. The service's own wiring (pool size as the default, health
routes exempt) is checked on the real app at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.middleware import Gate
from tests.support.gate import gate, gate_client


class HeldApp:
    """Answers 200 once the test releases the request; counts who is inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        try:
            if scope["path"] != "/healthz":
                await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.inside -= 1


@pytest.fixture
async def held() -> HeldApp:
    return HeldApp()


@pytest.fixture
async def limited(held: HeldApp, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # The app held here is a stand-in answering a bare "ok", not the service (whose own wiring
    # the last test checks).
    limit = gate(held, concurrency=2, wait_seconds=30, exempt=("/healthz",))
    async with gate_client(limit, app) as client:
        yield client


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_requests_over_the_limit_wait_their_turn_and_are_then_served(
    held: HeldApp, limited: httpx.AsyncClient
) -> None:
    requests = [asyncio.create_task(limited.get(f"/v1/{i}")) for i in range(5)]
    await until(lambda: held.inside == 2, "two requests inside")
    await asyncio.sleep(0.1)  # the other three have had every chance to get in
    assert held.inside == 2
    assert not any(task.done() for task in requests)

    held.release.set()
    answers = await asyncio.wait_for(asyncio.gather(*requests), timeout=10)
    assert [answer.status_code for answer in answers] == [200] * 5
    assert held.inside == 0


async def test_liveness_is_never_queued(held: HeldApp, limited: httpx.AsyncClient) -> None:
    requests = [asyncio.create_task(limited.get(f"/v1/{i}")) for i in range(3)]
    await until(lambda: held.inside == 2, "two requests inside")
    live = await asyncio.wait_for(limited.get("/healthz"), timeout=5)
    assert live.status_code == 200
    held.release.set()
    await asyncio.gather(*requests)


async def test_a_request_that_waits_too_long_gets_503_with_retry_after_and_the_rest_go_on(
    held: HeldApp, app: FastAPI
) -> None:
    limit = gate(held, concurrency=1, wait_seconds=0.2, exempt=())
    async with gate_client(limit, app) as client:
        first = asyncio.create_task(client.get("/v1/first"))
        await until(lambda: held.inside == 1, "the first request inside")
        refused = await asyncio.wait_for(client.get("/v1/second"), timeout=10)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["status"] == 503
        assert held.inside == 1  # the refused request never reached the app

        held.release.set()
        assert (await first).status_code == 200
        # The slot it held is free again.
        assert (await client.get("/v1/third")).status_code == 200


async def test_the_service_caps_at_its_pool_size_unless_told_otherwise(app: FastAPI) -> None:
    (limit,) = [m for m in app.user_middleware if m.cls is Gate]  # type: ignore[comparison-overlap]
    settings = app.state.settings
    expected = settings.max_concurrent_requests or settings.db_pool_size
    assert limit.kwargs["concurrency"] == expected
    assert limit.kwargs["wait_seconds"] == settings.db_pool_timeout_seconds
    exempt = limit.kwargs["exempt"]
    assert isinstance(exempt, tuple)
    assert {"/healthz", "/readyz"} <= set(exempt)
