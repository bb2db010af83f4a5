"""GET /metrics: off by default, refused outside JOURNAL_METRICS_ALLOW, counting by route template,
and no id, email or token in any label (the log canary's approach: make requests carrying them,
then search the whole scrape)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from api.app import create_app
from api.settings import Settings
from tests.conftest import make_settings
from tests.support.people import PASSWORD, register

CANARY = "okapi-canary-7c2e"
FAMILIES = {
    "journal_http_requests",
    "journal_http_request_duration_seconds",
    "journal_http_refusals",
    "journal_concurrency_slots",
    "journal_concurrency_slots_in_use",
    "journal_concurrency_waiting",
    "journal_db_pool_size",
    "journal_db_pool_connections_in_use",
    "journal_redis_errors",
    "journal_rate_limiter_degraded",
}


@asynccontextmanager
async def serving(app: FastAPI, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@asynccontextmanager
async def metrics_app(
    tmp_path: Path, settings: Settings, **overrides: object
) -> AsyncIterator[FastAPI]:
    app = create_app(
        make_settings(tmp_path, settings.database_url, metrics_enabled=True, **overrides)
    )
    async with app.router.lifespan_context(app):
        yield app


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_are_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_metrics_count_requests_by_route_template(tmp_path: Path, settings: Settings) -> None:
    async with metrics_app(tmp_path, settings) as app, serving(app) as http:
        patient = await register(http)
        assert (await http.get("/v1/checkins", headers=patient.headers)).status_code == 200
        assert (await http.head("/healthz")).status_code == 200
        assert (await http.get(f"/no/such/{uuid.uuid4()}")).status_code == 404
        assert (await http.request("BREW", "/healthz")).status_code == 405

        response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        families = {family.name for family in text_string_to_metric_families(response.text)}
        assert families >= FAMILIES
        found = samples(response.text)

    def requests(method: str, route: str, status: str) -> float:
        labels = frozenset({"method": method, "route": route, "status": status}.items())
        return found.get(("journal_http_requests_total", labels), 0)

    assert requests("GET", "/v1/checkins", "200") == 1
    assert requests("HEAD", "/healthz", "200") == 1  # the route the GET under it matched
    assert requests("GET", "unmatched", "404") == 1
    assert requests("other", "/healthz", "405") == 1  # methods come from a closed set
    assert found[("journal_concurrency_slots_in_use", frozenset())] == 0
    assert found[("journal_concurrency_waiting", frozenset())] == 0
    count = frozenset({"method": "GET", "route": "/v1/checkins"}.items())
    assert found[("journal_http_request_duration_seconds_count", count)] == 1


async def test_refusals_are_counted_by_cause(tmp_path: Path, settings: Settings) -> None:
    async with metrics_app(tmp_path, settings, rate_limit_per_address="1/minute") as app:
        async with serving(app, "10.9.8.7") as caller:
            assert (await caller.get("/v1/me")).status_code == 401
            assert (await caller.get("/v1/me")).status_code == 429
        async with serving(app) as operator:
            found = samples((await operator.get("/metrics")).text)
    refused = frozenset({"status": "429", "cause": "rate-limit"}.items())
    assert found[("journal_http_refusals_total", refused)] == 1


async def test_slots_waiting_and_refusals_of_a_full_node(
    tmp_path: Path, settings: Settings
) -> None:
    overrides = {"max_concurrent_requests": 1, "max_requests_per_caller": 1}
    async with metrics_app(tmp_path, settings, db_pool_timeout_seconds=0.5, **overrides) as app:
        entered, release = asyncio.Event(), asyncio.Event()

        @app.get("/slow")
        async def slow() -> None:
            entered.set()
            await release.wait()

        async with serving(app, "10.0.0.1") as first, serving(app, "10.0.0.2") as second:
            holding = asyncio.create_task(first.get("/slow"))
            await entered.wait()
            waiting = asyncio.create_task(second.get("/slow"))
            async with serving(app) as operator:  # /metrics never queues for a slot
                for _ in range(100):
                    found = samples((await operator.get("/metrics")).text)
                    if found[("journal_concurrency_waiting", frozenset())] == 1:
                        break
                    await asyncio.sleep(0.01)
                assert found[("journal_concurrency_waiting", frozenset())] == 1
                assert found[("journal_concurrency_slots_in_use", frozenset())] == 1
                assert found[("journal_concurrency_slots", frozenset())] == 1
                assert (await first.get("/slow")).status_code == 429  # its one request in flight
                assert (await waiting).status_code == 503  # no slot within the wait
                release.set()
                assert (await holding).status_code == 200
                found = samples((await operator.get("/metrics")).text)

    def refused(status: str, cause: str) -> float:
        return found[
            ("journal_http_refusals_total", frozenset({"status": status, "cause": cause}.items()))
        ]

    assert refused("429", "per-caller") == 1
    assert refused("503", "busy") == 1
    assert found[("journal_concurrency_waiting", frozenset())] == 0
    assert found[("journal_concurrency_slots_in_use", frozenset())] == 0


async def test_metrics_are_refused_outside_the_allowed_addresses(
    tmp_path: Path, settings: Settings
) -> None:
    async with metrics_app(tmp_path, settings) as app, serving(app, "10.1.2.3") as http:
        response = await http.get("/metrics")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/forbidden"
        assert "journal_" not in response.text
    async with (
        metrics_app(tmp_path, settings, metrics_allow="10.0.0.0/8, ::1") as app,
        serving(app, "10.1.2.3") as http,
    ):
        assert (await http.get("/metrics")).status_code == 200
        async with serving(app) as loopback:  # no longer on the list
            assert (await loopback.get("/metrics")).status_code == 403


def test_the_allowed_addresses_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="JOURNAL_METRICS_ALLOW"):
        make_settings(tmp_path, "sqlite+aiosqlite:///x.db", metrics_allow="127.0.0.1,anyone")


async def test_no_id_email_or_token_reaches_a_label(tmp_path: Path, settings: Settings) -> None:
    async with metrics_app(tmp_path, settings) as app, serving(app) as http:
        patient = await register(http)
        email = f"{CANARY}@example.org"
        created = await http.post(
            "/v1/accounts",
            json={"email": email, "password": PASSWORD, "display_name": CANARY, "role": "patient"},
        )
        assert created.status_code == 201
        stranger = str(uuid.uuid4())
        token = f"{CANARY}.{uuid.uuid4().hex}"
        await http.get(f"/v1/patients/{stranger}/checkins", headers={"Authorization": token})
        await http.get(
            f"/v1/patients/{patient.id}/checkins", headers={"Authorization": f"Bearer {token}"}
        )
        await http.get(f"/v1/patients/{patient.id}/checkins", headers=patient.headers)
        await http.get(f"/{CANARY}/{stranger}", params={"email": email, "token": token})
        await http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": f"wrong-{CANARY}"},
        )
        text = (await http.get("/metrics")).text

    assert 'route="/v1/patients/{patient_id}/checkins"' in text, "the requests were not counted"
    for secret in (CANARY, email, stranger, token, patient.id, patient.email, patient.access_token):
        assert secret not in text, f"found in the metrics: {secret[:12]}..."
