"""Each account's IANA time zone: set at sign-up or with PATCH /v1/me, and the days of both
summaries counted in it unless `tz` says otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.journal import assert_problem, create, iso, now
from tests.support.people import PASSWORD, Person, token, unique_email
from tests.support.sharing import bearer, give_grant, mint

NEW_YORK = ZoneInfo("America/New_York")


async def me(client: httpx.AsyncClient, person: Person) -> httpx.Response:
    return await client.get("/v1/me", headers=person.headers)


async def test_an_account_starts_in_utc_and_patch_changes_it(
    client: httpx.AsyncClient, patient: Person
) -> None:
    assert (await me(client, patient)).json()["time_zone"] == "UTC"
    response = await client.patch(
        "/v1/me",
        json={"time_zone": "America/New_York"},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["time_zone"] == "America/New_York"
    assert (await me(client, patient)).json()["time_zone"] == "America/New_York"


async def test_sign_up_takes_a_time_zone(client: httpx.AsyncClient) -> None:
    email = unique_email()
    body = {
        "email": email,
        "password": PASSWORD,
        "display_name": "Kiri",
        "role": "patient",
        "time_zone": "Pacific/Auckland",
    }
    response = await client.post("/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["time_zone"] == "Pacific/Auckland"
    assert (await token(client, email))["access_token"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "localtime", "", "x" * 65, "EST5EDT\x00", 5])
async def test_a_name_that_is_not_an_iana_zone_is_refused(
    client: httpx.AsyncClient, patient: Person, zone: object
) -> None:
    body = {
        "email": unique_email(),
        "password": PASSWORD,
        "display_name": "Nowhere",
        "role": "patient",
        "time_zone": zone,
    }
    assert_problem(await client.post("/v1/accounts", json=body), 422)
    patched = await client.patch(
        "/v1/me", json={"time_zone": zone}, headers={**patient.headers, "If-Match": '"1"'}
    )
    assert_problem(patched, 422)
    assert (await me(client, patient)).json()["time_zone"] == "UTC"


async def test_both_summaries_count_the_patients_own_days(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """The issue's example: a check-in at 23:30 in New York is that day there, the next in UTC."""
    await client.patch(
        "/v1/me",
        json={"time_zone": "America/New_York"},
        headers={**patient.headers, "If-Match": '"1"'},
    )
    local_today = now().astimezone(NEW_YORK).date()
    evening = datetime.combine(local_today - timedelta(days=2), datetime.min.time(), NEW_YORK)
    late = evening + timedelta(hours=23, minutes=30)
    await create(client, patient, "checkins", recorded_at=iso(late), mood=7)
    grant = await give_grant(client, patient, therapist, ["summary:read"])
    read = await mint(client, therapist, grant["id"])

    async def days(path: str, headers: dict[str, str], **params: str) -> dict[str, int]:
        response = await client.get(path, params={"days": "5", **params}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return {"tz": body["tz"], **{d["day"]: d["count"] for d in body["mood"] if d["count"]}}

    local = {"tz": "America/New_York", late.date().isoformat(): 1}
    assert await days("/v1/me/summary", patient.headers) == local
    assert await days(f"/v1/patients/{patient.id}/summary", bearer(read)) == local
    # `tz` still wins when given.
    next_day = (late.date() + timedelta(days=1)).isoformat()
    assert await days("/v1/me/summary", patient.headers, tz="UTC") == {"tz": "UTC", next_day: 1}
