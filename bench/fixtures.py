"""The people and data the scenarios need, made through the service's own API (and, for the long
history, straight in the database), and the token files the load script reads."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.settings import Settings
from api.therapists import service as therapists

PASSWORD = "bench horse battery staple"  # noqa: S105 - a throwaway account in a throwaway database
READER_CHECKINS = 300  # the list, therapist and sync scenarios read this patient's journal
CONCURRENCY = 8


@dataclass
class Person:
    email: str
    id: str = ""
    access: str = ""
    refresh: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class World:
    writers: list[Person]  # scenario 1: one per connection
    reader: Person  # scenarios 2, 3 and 4: a 300-entry journal with encrypted notes
    therapist: Person
    grant_id: str
    short: Person  # scenario 5: 100 check-ins
    long: Person  # scenario 5: the long history
    read_token: str = ""


def _ok(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def _gather(jobs: list[Callable[[], Awaitable[None]]]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def bounded(job: Callable[[], Awaitable[None]]) -> None:
        async with limit:
            await job()

    await asyncio.gather(*(bounded(job) for job in jobs))


async def invite(database_url: str, email: str) -> str:
    """A therapist's invitation code, made as `journal therapists invite` makes it."""
    settings = Settings.model_validate({"database_url": database_url})
    async with therapists.operator_session(settings) as session:
        return (await therapists.invite(session, email, "Bench Therapist", None)).code


async def register(
    client: httpx.AsyncClient, person: Person, role: str, invitation_code: str | None = None
) -> None:
    body = {
        "email": person.email,
        "password": PASSWORD,
        "display_name": person.email.split("@")[0],
        "role": role,
    }
    if invitation_code is not None:
        body["invitation_code"] = invitation_code
    person.id = _ok(await client.post("/v1/accounts", json=body), 201)["id"]
    tokens = _ok(
        await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": person.email, "password": PASSWORD},
        ),
        200,
    )
    person.access, person.refresh = tokens["access_token"], tokens["refresh_token"]


async def refresh(client: httpx.AsyncClient, person: Person) -> None:
    """A new token pair without the password (access tokens last 15 minutes)."""
    tokens = _ok(
        await client.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": person.refresh}
        ),
        200,
    )
    person.access, person.refresh = tokens["access_token"], tokens["refresh_token"]


async def _write_reader_journal(client: httpx.AsyncClient, reader: Person) -> None:
    """Check-ins with notes (so encrypted), one in ten private, a few minutes apart."""
    now = datetime.now(UTC)

    def job(n: int) -> Callable[[], Awaitable[None]]:
        async def post() -> None:
            body = {
                "mood": n % 11,
                "anxiety": (n * 3) % 11,
                "sleep_hours": 7.5,
                "note": f"A quiet day, slept well; entry number {n}.",
                "recorded_at": (now - timedelta(minutes=7 * n)).isoformat(),
                "private": n % 10 == 0,
            }
            _ok(await client.post("/v1/checkins", json=body, headers=reader.headers), 201)

        return post

    await _gather([job(n) for n in range(READER_CHECKINS)])


async def _build(base_url: str, writers: int, database_url: str) -> World:
    run = secrets.token_hex(3)

    def person(name: str) -> Person:
        return Person(email=f"bench-{run}-{name}@example.org")

    world = World(
        writers=[person(f"writer{n}") for n in range(writers)],
        reader=person("reader"),
        therapist=person("therapist"),
        grant_id="",
        short=person("short"),
        long=person("long"),
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        patients = [*world.writers, world.reader, world.short, world.long]
        await _gather([_registering(client, p, "patient") for p in patients])
        code = await invite(database_url, world.therapist.email)
        await register(client, world.therapist, "therapist", code)
        await _write_reader_journal(client, world.reader)
        grant = _ok(
            await client.post(
                "/v1/grants",
                json={"therapist_email": world.therapist.email, "scopes": ["checkins:read"]},
                headers=world.reader.headers,
            ),
            201,
        )
        world.grant_id = grant["id"]
    return world


def _registering(
    client: httpx.AsyncClient, person: Person, role: str
) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        await register(client, person, role)

    return job


def build_world(base_url: str, writers: int, database_url: str) -> World:
    return asyncio.run(_build(base_url, writers, database_url))


async def _refresh_all(base_url: str, world: World) -> None:
    people = [*world.writers, world.reader, world.therapist, world.short, world.long]
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        await _gather([_refreshing(client, p) for p in people])


def _refreshing(client: httpx.AsyncClient, person: Person) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        await refresh(client, person)

    return job


def refresh_all(base_url: str, world: World) -> None:
    asyncio.run(_refresh_all(base_url, world))


def mint_read_token(base_url: str, world: World) -> str:
    """A fresh patient-scoped read token (they last 15 minutes), as the README's therapist does."""
    response = httpx.post(
        f"{base_url}/v1/grants/{world.grant_id}/token",
        data={"scope": "checkins:read"},
        headers=world.therapist.headers,
        timeout=30,
    )
    world.read_token = _ok(response, 200)["access_token"]
    return world.read_token


def write_tokens(path: Path, tokens: list[str]) -> Path:
    path.write_text("".join(f"{token}\n" for token in tokens))
    return path
