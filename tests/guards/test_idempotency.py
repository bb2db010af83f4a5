"""Stored answers as the patient's export lists them: oldest first, and in the order of their
keys when several were stored in the same instant."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.support.clock import Clock
from tests.support.journal import body_for
from tests.support.people import Person


async def test_the_export_lists_stored_answers_oldest_first_then_by_key(
    client: httpx.AsyncClient, patient: Person, clock: Clock
) -> None:
    async def write(key: str) -> None:
        response = await client.post(
            "/v1/checkins",
            json=body_for("checkins"),
            headers={**patient.headers, "Idempotency-Key": key},
        )
        assert response.status_code == 201, response.text

    await write("m-first")
    clock.move(timedelta(seconds=1))
    for key in ("z-same-instant", "a-same-instant", "k-same-instant"):
        await write(key)
    export = await client.get("/v1/me/export", headers=patient.headers)
    assert [answer["idempotency_key"] for answer in export.json()["stored_answers"]] == [
        "m-first",
        "a-same-instant",
        "k-same-instant",
        "z-same-instant",
    ]
