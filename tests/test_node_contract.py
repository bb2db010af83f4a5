"""What one node promises the others and the load balancer (issue 16), seen through the real app:
a refresh that can be retried, a frozen Redis that costs a fraction of a second instead of an
outage, a per-caller share of the node, and the node's name on every log line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.middleware import Gate
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.conformance import conforming_client
from tests.support.gate import gate, gate_client
from tests.support.journal import assert_problem
from tests.support.people import Person, register

# A bound on every wait, not an expectation: a hang fails the test instead of stalling it.
BOUND = 20.0


@contextlib.asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with conforming_client(transport=transport, base_url="http://testserver") as http:
            yield app, http


# --- a refresh that can be retried (failure 6) -------------------------------------------------


async def refresh(client: httpx.AsyncClient, refresh_token: str, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=headers,
    )


async def test_a_refresh_resent_with_its_idempotency_key_answers_the_same_pair(
    client: httpx.AsyncClient, patient: Person
) -> None:
    key = str(uuid.uuid4())
    first = await refresh(client, patient.refresh_token, key)
    assert first.status_code == 200, first.text
    # The answer was lost on the way: the client sends the same request again.
    again = await refresh(client, patient.refresh_token, key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["cache-control"] == "no-store"
    # The login lives on: the new pair works, once.
    pair = first.json()
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    following = await refresh(client, pair["refresh_token"], str(uuid.uuid4()))
    assert following.status_code == 200, following.text


@pytest.mark.parametrize("resent_key", [None, "another key"], ids=["without-key", "other-key"])
async def test_a_used_refresh_token_without_that_key_still_ends_the_login(
    client: httpx.AsyncClient, patient: Person, resent_key: str | None
) -> None:
    first = await refresh(client, patient.refresh_token, str(uuid.uuid4()))
    assert first.status_code == 200, first.text
    reused = await refresh(client, patient.refresh_token, resent_key)
    assert_problem(reused, 400)
    assert reused.json()["error"] == "invalid_grant"
    pair = first.json()
    # Reuse ended the whole login, the pair the first refresh gave included.
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 401
    assert (await refresh(client, pair["refresh_token"], None)).status_code == 400


async def test_the_key_of_one_refresh_does_not_replay_for_another_refresh_token(
    client: httpx.AsyncClient, patient: Person
) -> None:
    key = str(uuid.uuid4())
    first = await refresh(client, patient.refresh_token, key)
    assert first.status_code == 200, first.text
    second = await refresh(client, first.json()["refresh_token"], key)
    # Same key, another request: refused as for every POST, and nothing was exchanged.
    assert_problem(second, 422)
    third = await refresh(client, first.json()["refresh_token"], str(uuid.uuid4()))
    assert third.status_code == 200, third.text


# --- a frozen Redis (failure 3) ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """A server that accepts connections and reads what it is sent, and never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in connections:
            writer.close()
        server.close()


@contextlib.contextmanager
def service_log() -> Iterator[io.StringIO]:
    """What the service's own handler (installed by the app's lifespan) writes, meanwhile."""
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


async def test_a_redis_that_never_answers_costs_requests_nothing_and_reports_degraded(
    tmp_path: Path, database_url: str
) -> None:
    async with silent_redis() as redis_url:
        settings = make_settings(
            tmp_path, database_url, redis_url=redis_url, redis_timeout_seconds=0.2
        )
        async with (
            app_client(settings) as (_app, client),
            asyncio.timeout(BOUND),
        ):
            with service_log() as log:
                person = await register(client, "patient")
                for _ in range(5):
                    assert (await client.get("/v1/me", headers=person.headers)).status_code == 200
                token = await client.post(
                    "/v1/auth/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": person.refresh_token,
                    },
                )
                assert token.status_code == 200, token.text
                ready = await client.get("/readyz")
                assert ready.status_code == 200
                assert ready.json() == {"status": "degraded"}
    warnings = [line for line in log.getvalue().splitlines() if "rate limiter unavailable" in line]
    # Every request above met the silent Redis; the log says so once for the interval.
    assert len(warnings) == 1, warnings


# --- one caller's share of a node (failure 2) --------------------------------------------------


class HeldApp:
    """Answers 200 once released; counts the requests inside."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0
        self.entered = asyncio.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with self.entered:
            self.inside += 1
            self.entered.notify_all()
        await self.release.wait()
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_one_caller_gets_at_most_its_share_and_others_are_served_beside_it(
    app: FastAPI,
) -> None:
    held = HeldApp()
    limit = gate(held, concurrency=4, wait_seconds=30, exempt=(), per_caller=2)
    async with gate_client(limit, app) as client:
        greedy = {"Authorization": "Bearer greedy"}
        inside = [asyncio.create_task(client.get("/v1/x", headers=greedy)) for _ in range(2)]
        async with held.entered:
            await asyncio.wait_for(held.entered.wait_for(lambda: held.inside == 2), BOUND)
        # The third request of the same caller is refused at once, not queued.
        refused = await asyncio.wait_for(client.get("/v1/x", headers=greedy), BOUND)
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        # Someone else still gets in (two slots are free).
        other = asyncio.create_task(client.get("/v1/x", headers={"Authorization": "Bearer b"}))
        async with held.entered:
            await asyncio.wait_for(held.entered.wait_for(lambda: held.inside == 3), BOUND)
        held.release.set()
        answers = await asyncio.wait_for(asyncio.gather(*inside, other), BOUND)
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        # Its requests answered, the caller has its share again.
        assert (await client.get("/v1/x", headers=greedy)).status_code == 200
        assert limit.in_flight == {}


async def test_the_share_of_one_caller_defaults_to_half_the_node(app: FastAPI) -> None:
    (limit,) = [m for m in app.user_middleware if m.cls is Gate]  # type: ignore[comparison-overlap]
    settings: Settings = app.state.settings
    assert limit.kwargs["per_caller"] == max(1, settings.concurrency // 2)


# --- every log line names the node ------------------------------------------------------------


async def test_every_log_line_names_the_node(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, node_name="node-b", log_level="DEBUG")
    async with app_client(settings) as (_app, client):
        with service_log() as log:
            await register(client, "patient")
            await client.get("/v1/nowhere")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert len(lines) >= 3
    assert {line["node"] for line in lines} == {"node-b"}
