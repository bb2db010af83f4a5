"""A patient's new name reaches the therapists of their live grants, and only those: never another
patient's grant, never a grant that has ended, not even one ending this very instant."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.support.clock import Clock
from tests.support.journal import assert_problem
from tests.support.people import Person, register, token
from tests.support.sharing import give_grant


async def update_me(client: httpx.AsyncClient, person: Person, **fields: object) -> None:
    me = await client.get("/v1/me", headers=person.headers)
    response = await client.patch(
        "/v1/me", json=fields, headers={**person.headers, "If-Match": me.headers["etag"]}
    )
    assert response.status_code == 200, response.text


async def name_seen(client: httpx.AsyncClient, therapist: Person, grant: dict[str, object]) -> str:
    response = await client.get(f"/v1/grants/{grant['id']}", headers=therapist.headers)
    assert response.status_code == 200, response.text
    name: str = response.json()["patient"]["display_name"]
    return name


async def test_a_new_name_reaches_only_the_patients_own_live_grants(
    client: httpx.AsyncClient, therapist: Person, clock: Clock
) -> None:
    ada = await register(client, "patient", "Ada")
    bea = await register(client, "patient", "Bea")
    ends = clock() + timedelta(minutes=5)  # within the access tokens' 15 minutes
    live = await give_grant(client, ada, therapist)
    ending = await give_grant(client, ada, therapist, expires_at=ends.isoformat())
    other = await give_grant(client, bea, therapist)
    clock.set(ends)  # the second grant ends at this very instant
    await update_me(client, ada, display_name="Ada L.")
    assert await name_seen(client, therapist, live) == "Ada L."
    assert await name_seen(client, therapist, ending) == "Ada"
    assert await name_seen(client, therapist, other) == "Bea"


async def test_a_change_of_time_zone_leaves_the_name_therapists_see(
    client: httpx.AsyncClient, therapist: Person
) -> None:
    ada = await register(client, "patient", "Ada")
    grant = await give_grant(client, ada, therapist)
    await update_me(client, ada, time_zone="Europe/Paris")
    assert await name_seen(client, therapist, grant) == "Ada"
    me = await client.get("/v1/me", headers=ada.headers)
    assert (me.json()["display_name"], me.json()["time_zone"]) == ("Ada", "Europe/Paris")


async def test_a_therapist_renaming_themselves_changes_no_patients_name(
    client: httpx.AsyncClient, therapist: Person, patient: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    before = await name_seen(client, therapist, grant)
    await update_me(client, therapist, display_name="Dr. Renamed")
    assert await name_seen(client, therapist, grant) == before
    mine = await client.get(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert mine.json()["patient"]["display_name"] == before


async def test_a_wrong_current_password_is_named_as_the_field_at_fault(
    client: httpx.AsyncClient, patient: Person
) -> None:
    me = await client.get("/v1/me", headers=patient.headers)
    response = await client.patch(
        "/v1/me",
        json={"password": "a brand new passphrase", "current_password": "not the password"},
        headers={**patient.headers, "If-Match": me.headers["etag"]},
    )
    problem = assert_problem(response, 422)
    assert [issue["loc"] for issue in problem["errors"]] == [["body", "current_password"]]
    assert (await token(client, patient.email)).get("access_token")  # the old one still works
