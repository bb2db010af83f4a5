"""Grants and read tokens, made through the API as a patient and a therapist would."""

from __future__ import annotations

from typing import Any

import httpx

from api.models import ReadScope
from tests.support.people import Person

ALL_SCOPES = [scope.value for scope in ReadScope]


async def give_grant(
    client: httpx.AsyncClient,
    patient: Person,
    therapist: Person,
    scopes: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"therapist_email": therapist.email, "scopes": scopes or ALL_SCOPES, **extra}
    response = await client.post("/v1/grants", json=body, headers=patient.headers)
    assert response.status_code == 201, response.text
    grant: dict[str, Any] = response.json()
    return grant


async def mint(
    client: httpx.AsyncClient, therapist: Person, grant_id: str, scope: str | None = None
) -> str:
    data = {"scope": scope} if scope else {}
    response = await client.post(
        f"/v1/grants/{grant_id}/token", data=data, headers=therapist.headers
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
