"""The service's ``Gate`` alone, around a stand-in app the test controls (one that holds each
request until released, say), so what is inside and what is waiting is known exactly."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import Gate


def gate(
    inner: ASGIApp,
    *,
    concurrency: int,
    wait_seconds: float,
    exempt: tuple[str, ...],
    per_caller: int | None = None,
) -> Gate:
    """A ``Gate`` around ``inner``, with the service's default body limits."""
    return Gate(
        inner,
        max_bytes=1_048_576,
        body_timeout_seconds=10.0,
        concurrency=concurrency,
        wait_seconds=wait_seconds,
        exempt=exempt,
        per_caller=per_caller,
    )


def gate_client(limit: Gate, host: FastAPI) -> httpx.AsyncClient:
    """A client of ``limit`` as the service hosts it: Starlette puts its app in every request's
    scope, and the gate's rate limit spends from that app's limiter (``host``: the suite's app,
    started, whose budgets the suite never exhausts).

    Not checked against the spec: the app inside is a stand-in, not the service.
    """

    async def hosted(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = host
        await limit(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=hosted), base_url="http://t")
