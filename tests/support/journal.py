"""Journal helpers for tests: valid bodies per resource, writes through the API, sync pulls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.entries import RESOURCES
from tests.support.people import Person

RESOURCE_NAMES = tuple(RESOURCES)
PROBLEM_FIELDS = {"type", "title", "status", "detail"}

Json = dict[str, Any]


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def phq9(total: int, *, item9: int = 0) -> list[int]:
    """PHQ-9 answers summing to ``total`` with item 9 (self-harm) answered ``item9``."""
    rest = total - item9
    assert 0 <= item9 <= 3
    assert 0 <= rest <= 24
    answers = [min(3, max(0, rest - 3 * i)) for i in range(8)]
    return [*answers, item9]


def gad7(total: int) -> list[int]:
    assert 0 <= total <= 21
    return [min(3, max(0, total - 3 * i)) for i in range(7)]


def body_for(resource: str, **fields: Any) -> Json:
    """A minimal valid create body for ``resource``, with ``fields`` added or replaced."""
    bodies: dict[str, Json] = {
        "sessions": {
            "started_at": iso(now() - timedelta(hours=2)),
            "route": "im",
            "setting": "clinic",
        },
        "intentions": {"text": "Be gentle with myself"},
        "reflections": {"text": "It felt like a long exhale."},
        "checkins": {"mood": 5},
        "assessments": {"instrument": "phq9", "answers": phq9(6)},
    }
    return {**bodies[resource], **fields}


def assert_problem(response: httpx.Response, status: int) -> Json:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: Json = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    return body


async def create(
    client: httpx.AsyncClient,
    person: Person,
    resource: str,
    body: Json | None = None,
    **fields: Any,
) -> Json:
    """Create through the API and return the entry as the server answered it."""
    response = await client.post(
        f"/v1/{resource}",
        json=body_for(resource, **fields) if body is None else body,
        headers=person.headers,
    )
    assert response.status_code == 201, response.text
    entry: Json = response.json()
    return entry


async def edit(
    client: httpx.AsyncClient, person: Person, resource: str, entry: Json, changes: Json
) -> Json:
    response = await client.patch(
        f"/v1/{resource}/{entry['id']}",
        json=changes,
        headers={**person.headers, "If-Match": f'"{entry["version"]}"'},
    )
    assert response.status_code == 200, response.text
    edited: Json = response.json()
    return edited


async def remove(client: httpx.AsyncClient, person: Person, resource: str, entry: Json) -> None:
    response = await client.delete(
        f"/v1/{resource}/{entry['id']}",
        headers={**person.headers, "If-Match": f'"{entry["version"]}"'},
    )
    assert response.status_code == 204, response.text


async def list_ids(client: httpx.AsyncClient, person: Person, resource: str) -> set[str]:
    response = await client.get(f"/v1/{resource}?limit=200", headers=person.headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return {item["id"] for item in response.json()["items"]}


async def pull(
    client: httpx.AsyncClient, person: Person, cursor: str = "0", limit: int | None = None
) -> Json:
    """One GET /v1/sync page."""
    params = {"cursor": cursor} if limit is None else {"cursor": cursor, "limit": str(limit)}
    response = await client.get("/v1/sync", params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    page: Json = response.json()
    return page


def page_size(page: Json) -> int:
    return sum(len(page["changes"][name]) + len(page["deleted"][name]) for name in RESOURCE_NAMES)


def changed_ids(page: Json) -> dict[str, set[str]]:
    return {name: {entry["id"] for entry in page["changes"][name]} for name in RESOURCE_NAMES}


def deleted_ids(page: Json) -> dict[str, set[str]]:
    return {name: set(page["deleted"][name]) for name in RESOURCE_NAMES}


def is_empty(page: Json) -> bool:
    return page_size(page) == 0


def new_id() -> str:
    return str(uuid.uuid4())
