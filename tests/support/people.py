"""Test actors: real accounts made through the API, with their tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from api.settings import Settings
from api.therapists import service as therapists

PASSWORD = "a long enough passphrase"


@dataclass
class Person:
    id: str
    email: str
    role: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.org"


async def token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


# The database the suite runs on (set by conftest's `database_url`): invitations are made there
# as the operator makes them, through the CLI's own service function.
_database: dict[str, str] = {}


def use_database(url: str) -> None:
    _database["url"] = url


@contextmanager
def invitations_on(url: str) -> Iterator[None]:
    """Invitations go to another database for a while (a test module with a database of its own)."""
    previous = _database.get("url")
    use_database(url)
    try:
        yield
    finally:
        if previous is not None:
            use_database(previous)


async def invite(email: str, name: str = "Dr. Test", clinic: str | None = "Test Clinic") -> str:
    """An operator's invitation for ``email``, as `journal therapists invite` makes it: the code."""
    settings = Settings.model_validate({"database_url": _database["url"]})
    async with therapists.operator_session(settings) as session:
        invited = await therapists.invite(session, email, name, clinic)
    return invited.code


async def register(
    client: httpx.AsyncClient, role: str = "patient", display_name: str | None = None
) -> Person:
    """A patient, or a therapist invited by the operator (and so verified), signed in."""
    email = unique_email(role)
    name = display_name or f"Test {role}"
    body = {"email": email, "password": PASSWORD, "display_name": name, "role": role}
    if role == "therapist":
        body["invitation_code"] = await invite(email, name)
    response = await client.post("/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    tokens = await token(client, email)
    return Person(
        id=response.json()["id"],
        email=email,
        role=role,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )
