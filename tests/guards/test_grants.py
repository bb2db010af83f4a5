"""A grant's lifetime at its exact bounds, the field named when one is refused, and what both
sides are shown of a grant."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from api.grants.service import LONGEST_LIFETIME
from tests.support.clock import Clock
from tests.support.journal import assert_problem
from tests.support.people import Person
from tests.support.sharing import ALL_SCOPES


async def offer(
    client: httpx.AsyncClient, patient: Person, therapist_email: str, **extra: object
) -> httpx.Response:
    body = {"therapist_email": therapist_email, "scopes": ALL_SCOPES, **extra}
    return await client.post("/v1/grants", json=body, headers=patient.headers)


async def test_a_grant_may_last_exactly_the_longest_lifetime_and_must_end_after_now(
    client: httpx.AsyncClient, patient: Person, therapist: Person, clock: Clock
) -> None:
    now = clock()
    longest = await offer(
        client, patient, therapist.email, expires_at=(now + LONGEST_LIFETIME).isoformat()
    )
    assert longest.status_code == 201, longest.text
    for refused_at in (now, now + LONGEST_LIFETIME + timedelta(microseconds=1)):
        refused = await offer(client, patient, therapist.email, expires_at=refused_at.isoformat())
        problem = assert_problem(refused, 422)
        assert [issue["loc"] for issue in problem["errors"]] == [["body", "expires_at"]]


async def test_a_grant_to_no_therapist_names_the_email_as_the_field_at_fault(
    client: httpx.AsyncClient, patient: Person
) -> None:
    refused = await offer(client, patient, "nobody-here@example.org")
    problem = assert_problem(refused, 422)
    assert [issue["loc"] for issue in problem["errors"]] == [["body", "therapist_email"]]


async def test_both_sides_see_when_a_grant_was_revoked_and_the_therapists_clinic(
    client: httpx.AsyncClient, patient: Person, therapist: Person, clock: Clock
) -> None:
    given = await offer(client, patient, therapist.email)
    assert given.status_code == 201
    grant = given.json()
    assert grant["therapist"]["clinic"] == "Test Clinic"
    clock.move(timedelta(minutes=1))
    revoked = await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert revoked.status_code in (200, 204), revoked.text
    for person in (patient, therapist):
        seen = (await client.get(f"/v1/grants/{grant['id']}", headers=person.headers)).json()
        assert datetime.fromisoformat(seen["revoked_at"]) == clock()
        assert seen["therapist"]["clinic"] == "Test Clinic"
