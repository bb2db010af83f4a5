"""Guards around tokens that a mutation run found no test holding (docs/mutants/README.md).

Every test here goes through the real app and database, with the service's clock moved by the
test (never slept), so each boundary is reached exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api.auth.tokens import CLOCK_SKEW
from api.settings import Settings
from tests.support.clock import Clock
from tests.support.journal import assert_problem
from tests.support.people import Person, token
from tests.support.sharing import bearer, give_grant, mint
from tests.support.tokens import sign, valid_claims


def expiry_of(token: str) -> datetime:
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(claims["exp"], UTC)


async def test_a_revoked_read_token_stays_revoked_for_as_long_as_it_would_be_accepted(
    client: httpx.AsyncClient, patient: Person, therapist: Person, clock: Clock
) -> None:
    """Read tokens are accepted for ``CLOCK_SKEW`` past their expiry (another node's clock may
    be behind); the record of a revocation must outlive that window, or the next revocation
    (which forgets the records of tokens that can no longer be used) brings the token back."""
    grant = await give_grant(client, patient, therapist)
    checkins = f"/v1/patients/{patient.id}/checkins"
    revoked = await mint(client, therapist, grant["id"])
    kept = await mint(client, therapist, grant["id"])
    assert (await client.get(checkins, headers=bearer(revoked))).status_code == 200
    assert (await client.post("/v1/auth/revoke", data={"token": revoked})).status_code == 200
    clock.move(timedelta(minutes=1))
    later = await mint(client, therapist, grant["id"])  # still valid when the first has expired

    # Just inside the leeway after the first tokens' expiry: a token not revoked is still
    # accepted there, and another revocation comes in, which prunes what it may.
    clock.set(expiry_of(revoked) + CLOCK_SKEW - timedelta(seconds=1))
    assert (await client.get(checkins, headers=bearer(kept))).status_code == 200
    assert (await client.post("/v1/auth/revoke", data={"token": later})).status_code == 200

    assert_problem(await client.get(checkins, headers=bearer(revoked)), 401)
    # And once past the leeway it is refused as expired, record or not.
    clock.set(expiry_of(revoked) + CLOCK_SKEW)
    assert_problem(await client.get(checkins, headers=bearer(kept)), 401)
    assert_problem(await client.get(checkins, headers=bearer(revoked)), 401)


async def test_a_refresh_token_is_over_at_its_exact_expiry_instant(
    client: httpx.AsyncClient, patient: Person, clock: Clock, settings: Settings
) -> None:
    signed_in = [await token(client, patient.email) for _ in range(2)]
    ends = clock() + timedelta(days=settings.refresh_token_ttl_days)

    async def refresh(pair: dict[str, str]) -> httpx.Response:
        return await client.post(
            "/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        )

    clock.set(ends - timedelta(microseconds=1))
    assert (await refresh(signed_in[0])).status_code == 200
    clock.set(ends)
    refused = await refresh(signed_in[1])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_a_sign_in_ended_twice_keeps_the_time_it_first_ended(
    client: httpx.AsyncClient, patient: Person, clock: Clock
) -> None:
    """The export shows when each sign-in ended: a second revocation is no new end."""
    device = await token(client, patient.email)
    ended = clock()
    for _ in range(2):
        revoked = await client.post("/v1/auth/revoke", data={"token": device["refresh_token"]})
        assert revoked.status_code == 200
        clock.move(timedelta(minutes=1))
    export = (await client.get("/v1/me/export", headers=patient.headers)).json()
    ends = [sign_in["ended_at"] for sign_in in export["sign_ins"]]
    assert ends.count(None) == 1  # the sign-in this export is asked through
    assert [datetime.fromisoformat(end) for end in ends if end is not None] == [ended]


async def test_a_token_issued_up_to_the_clock_skew_ahead_is_accepted_and_no_later(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, clock: Clock
) -> None:
    """Another node's clock may run ahead by up to ``CLOCK_SKEW``: a token it issued that far in
    this node's future is accepted, one issued a second further is not."""
    login_id = jwt.decode(patient.access_token, options={"verify_signature": False})["sid"]
    now = int(clock.at.timestamp())
    skew = int(CLOCK_SKEW.total_seconds())
    for ahead, status in ((skew, 200), (skew + 1, 401)):
        claims = {**valid_claims(app, patient.id, login_id), "iat": now + ahead, "exp": now + 600}
        response = await client.get("/v1/me", headers=bearer(sign(app, claims)))
        assert response.status_code == status, (ahead, response.text)


@pytest.mark.parametrize(
    "change",
    [
        {"role": "patient"},  # a read token is a therapist's, whatever else it says
        {"jti": 12345},  # its id is what a revocation names: a string
        {"scope": ["checkins:read"]},  # scopes are one space-separated string (RFC 8693)
    ],
    ids=["a patient's role", "a jti not a string", "scopes as a list"],
)
async def test_a_read_token_signed_by_us_with_a_claim_of_the_wrong_kind_is_refused(
    app: FastAPI,
    client: httpx.AsyncClient,
    patient: Person,
    therapist: Person,
    change: dict[str, object],
) -> None:
    """Signed with the service's own key (as a key leak or a minting bug would sign it), a read
    token whose role, id or scope is not what the service mints is refused, not read through."""
    grant = await give_grant(client, patient, therapist)
    minted = await mint(client, therapist, grant["id"])
    checkins = f"/v1/patients/{patient.id}/checkins"
    claims = jwt.decode(minted, options={"verify_signature": False})
    # The forger's own copy, unchanged, reads: what is refused below is the one claim.
    assert (await client.get(checkins, headers=bearer(sign(app, claims)))).status_code == 200
    assert_problem(await client.get(checkins, headers=bearer(sign(app, {**claims, **change}))), 401)


async def test_a_token_remembered_as_one_kind_is_refused_as_the_other(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """A verified token is remembered by its text (``TokenCodec``); remembered as a read token,
    it is still no login token, and the other way round."""
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    checkins = f"/v1/patients/{patient.id}/checkins"
    assert (await client.get(checkins, headers=bearer(read_token))).status_code == 200
    assert_problem(await client.get("/v1/me", headers=bearer(read_token)), 401)
    assert (await client.get("/v1/me", headers=therapist.headers)).status_code == 200
    assert_problem(await client.get(checkins, headers=therapist.headers), 401)
    # Each still works where it belongs, after being refused where it does not.
    assert (await client.get(checkins, headers=bearer(read_token))).status_code == 200
    assert (await client.get("/v1/me", headers=therapist.headers)).status_code == 200
