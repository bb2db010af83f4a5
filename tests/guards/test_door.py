"""The read-token door, from the side of the patients a therapist was never given: a request about
them is refused like any unknown id, and kept for the operator, never in their access log."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from api.models import StrayRequest
from tests.support.clock import Clock
from tests.support.journal import assert_problem
from tests.support.people import Person, register, token
from tests.support.sharing import bearer, give_grant, mint


async def access_log(client: httpx.AsyncClient, person: Person) -> list[tuple[str, str, str]]:
    response = await client.get("/v1/me/access-log", headers=person.headers)
    assert response.status_code == 200, response.text
    return [(e["resource"], e["action"], e["outcome"]) for e in response.json()["items"]]


async def test_a_patient_who_shared_only_with_another_therapist_is_a_stranger_to_this_one(
    client: httpx.AsyncClient, app: FastAPI, patient: Person, therapist: Person, clock: Clock
) -> None:
    """Sharing with one therapist tells nothing to another: their request about that patient
    is a stray one, like a request about someone who shared with no one."""
    elsewhere = await register(client)
    colleague = await register(client, "therapist")
    await give_grant(client, elsewhere, colleague)
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])

    response = await client.get(f"/v1/patients/{elsewhere.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 404)
    # Nothing of this therapist's asking is in the log of a patient who never shared with them.
    assert await access_log(client, elsewhere) == []
    async with app.state.sessionmaker() as session:
        kept = (
            await session.scalars(
                select(StrayRequest).where(StrayRequest.therapist_id == uuid.UUID(therapist.id))
            )
        ).all()
    assert [(s.grant_id, s.resource, s.action, s.at) for s in kept] == [
        (uuid.UUID(grant["id"]), "checkins", "list", clock())
    ]


async def test_a_patient_who_shared_with_this_therapist_sees_the_refusal(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """The other side of the same line: a live grant to this therapist makes a request about
    that patient, through another patient's token, that patient's to see."""
    former = await register(client)
    await give_grant(client, former, therapist)
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    response = await client.get(f"/v1/patients/{former.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 404)
    assert await access_log(client, former) == [("checkins", "list", "not_found")]


async def test_a_missing_read_token_is_challenged_without_an_error_code(
    client: httpx.AsyncClient, patient: Person
) -> None:
    """RFC 6750 section 3.1: a request with no credentials at all gets a bare challenge."""
    response = await client.get(f"/v1/patients/{patient.id}/checkins")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_missing_scope_is_named_in_the_challenge(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """RFC 6750 section 3.1: ``insufficient_scope`` with the scope the request needs, so the
    client knows which token to ask for; every scope that would do, when several would."""
    grant = await give_grant(client, patient, therapist, scopes=["checkins:read"])
    read_token = await mint(client, therapist, grant["id"])
    refused = await client.get(f"/v1/patients/{patient.id}/sessions", headers=bearer(read_token))
    assert_problem(refused, 403)
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="sessions:read"'
    )
    flags = await client.get(f"/v1/patients/{patient.id}/safety-flags", headers=bearer(read_token))
    assert_problem(flags, 403)
    assert flags.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="assessments:read summary:read"'
    )


async def test_a_read_token_of_an_ended_login_says_nothing_to_the_patient_while_another_lives(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """Logging out of one device ends the read tokens minted there, a refusal for the bearer
    alone (nothing in the patient's log), though the therapist is still signed in elsewhere."""
    grant = await give_grant(client, patient, therapist)
    other_device = await token(client, therapist.email)
    read_token = await mint(client, therapist, grant["id"])
    await client.post("/v1/auth/revoke", data={"token": therapist.access_token})
    still = {"Authorization": f"Bearer {other_device['access_token']}"}
    assert (await client.get("/v1/patients", headers=still)).status_code == 200
    response = await client.get(f"/v1/patients/{patient.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 401)
    # The minting and the listing of patients are the patient's to see; the refusal is not.
    assert await access_log(client, patient) == [
        ("patients", "list", "allowed"),
        ("grant", "open", "allowed"),
    ]


async def test_a_read_token_revoked_alone_is_refused_without_a_word_while_its_login_reads_on(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """Revoking one read token ends that token only (RFC 7009): it is refused like an expired
    one, with nothing in the patient's log, while the therapist's login and their other read
    tokens go on. (The token is not a withdrawn grant: nothing for the patient to see.)"""
    grant = await give_grant(client, patient, therapist)
    revoked = await mint(client, therapist, grant["id"])
    other = await mint(client, therapist, grant["id"])
    assert (await client.post("/v1/auth/revoke", data={"token": revoked})).status_code == 200

    checkins = f"/v1/patients/{patient.id}/checkins"
    assert_problem(await client.get(checkins, headers=bearer(revoked)), 401)
    assert (await client.get(checkins, headers=bearer(other))).status_code == 200
    # Two mintings and the other token's read; no refusal of the revoked one.
    assert sorted(await access_log(client, patient)) == sorted(
        [("grant", "open", "allowed")] * 2 + [("checkins", "list", "allowed")]
    )
