"""Patient B can learn nothing of patient A's journal: every attempt on A's entries gets exactly what
an id that does not exist gets, on every operation of every resource."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.entries import EDIT, RESOURCES, body
from tests.support.people import Person, register

VOLATILE_HEADERS = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}


def shape(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    return response.status_code, response.json() if response.content else None, headers


@pytest.fixture
async def alice_and_bob(client: httpx.AsyncClient) -> tuple[Person, Person]:
    return await register(client), await register(client)


@pytest.mark.parametrize("resource", RESOURCES)
async def test_b_gets_what_a_missing_id_gets(
    client: httpx.AsyncClient, alice_and_bob: tuple[Person, Person], resource: str
) -> None:
    alice, bob = alice_and_bob
    created = await client.post(f"/v1/{resource}", json=body(resource), headers=alice.headers)
    alices_id = created.json()["id"]
    missing_id = str(uuid.uuid4())
    edit = EDIT.get(resource, {"private": True})
    attempts: dict[str, Callable[[str], Awaitable[httpx.Response]]] = {
        "get": lambda entry: client.get(f"/v1/{resource}/{entry}", headers=bob.headers),
        "patch": lambda entry: client.patch(
            f"/v1/{resource}/{entry}", json=edit, headers={**bob.headers, "If-Match": '"1"'}
        ),
        "patch without If-Match": lambda entry: client.patch(
            f"/v1/{resource}/{entry}", json=edit, headers=bob.headers
        ),
        "delete": lambda entry: client.delete(
            f"/v1/{resource}/{entry}", headers={**bob.headers, "If-Match": '"1"'}
        ),
        "delete without If-Match": lambda entry: client.delete(
            f"/v1/{resource}/{entry}", headers=bob.headers
        ),
    }
    for name, attempt in attempts.items():
        on_alices = shape(await attempt(alices_id))
        on_missing = shape(await attempt(missing_id))
        assert on_alices == on_missing, name
        assert on_alices[0] in {404, 405}, name

    # Creating with Alice's id is refused, and says nothing of her entry.
    taken = await client.post(
        f"/v1/{resource}", json=body(resource, id=alices_id), headers=bob.headers
    )
    assert taken.status_code == 409
    assert alice.id not in taken.text
    assert set(taken.json()) == {"type", "title", "status", "detail"}

    # Bob's lists and sync hold nothing of Alice's.
    listed = await client.get(f"/v1/{resource}", params={"limit": 200}, headers=bob.headers)
    assert alices_id not in listed.text
    synced = await client.get("/v1/sync", params={"cursor": "0"}, headers=bob.headers)
    assert alices_id not in synced.text

    # Alice's entry is untouched.
    after = await client.get(f"/v1/{resource}/{alices_id}", headers=alice.headers)
    assert after.json() == created.json()


async def test_filtering_by_anothers_session_is_like_filtering_by_none(
    client: httpx.AsyncClient, alice_and_bob: tuple[Person, Person]
) -> None:
    alice, bob = alice_and_bob
    session = (
        await client.post("/v1/sessions", json=body("sessions"), headers=alice.headers)
    ).json()
    await client.post(
        "/v1/intentions", json=body("intentions", session_id=session["id"]), headers=alice.headers
    )
    for resource in ("intentions", "reflections"):
        on_alices = await client.get(
            f"/v1/{resource}", params={"session_id": session["id"]}, headers=bob.headers
        )
        on_missing = await client.get(
            f"/v1/{resource}", params={"session_id": str(uuid.uuid4())}, headers=bob.headers
        )
        assert shape(on_alices) == shape(on_missing)
        assert on_alices.json() == {"items": [], "next_cursor": None}


async def test_b_cannot_link_to_as_entries(
    client: httpx.AsyncClient, alice_and_bob: tuple[Person, Person]
) -> None:
    alice, bob = alice_and_bob
    session = (
        await client.post("/v1/sessions", json=body("sessions"), headers=alice.headers)
    ).json()
    own = (await client.post("/v1/intentions", json=body("intentions"), headers=bob.headers)).json()
    linked = await client.patch(
        f"/v1/intentions/{own['id']}",
        json={"session_id": session["id"]},
        headers={**bob.headers, "If-Match": '"1"'},
    )
    assert linked.status_code == 422
    assert (await client.get(f"/v1/intentions/{own['id']}", headers=bob.headers)).json()[
        "session_id"
    ] is None
