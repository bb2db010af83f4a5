"""Verified therapists (issue 13): accounts by the operator's invitation, sharing by pairing code,
read tokens that end with the therapist's login, and what a therapist's stray requests leave.

Runs on the suite's database (SQLite, or PostgreSQL with TEST_DATABASE_URL), through the app.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from api.models import Account, AuditRecord, PairingCode, StrayRequest
from api.models.base import utcnow
from api.pairing.codes import ALPHABET, BITS, normalize
from api.settings import Settings
from api.therapists import service as therapists
from tests.support.browser import csrf_of, web_sign_in
from tests.support.conformance import conforming_client
from tests.support.journal import assert_problem
from tests.support.people import PASSWORD, Person, invite, register, token, unique_email
from tests.support.sharing import ALL_SCOPES, bearer, give_grant, mint

CODE_SHAPE = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


def operator(settings: Settings) -> Any:
    """One operator transaction on the suite's database, as the CLI runs it."""
    return therapists.operator_session(settings)


async def sign_up(
    client: httpx.AsyncClient, email: str, code: str | None, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {"email": email, "password": PASSWORD, "role": "therapist", **extra}
    if code is not None:
        body["invitation_code"] = code
    return await client.post("/v1/accounts", json=body)


async def signed_in_as(client: httpx.AsyncClient, email: str, role: str) -> Person:
    tokens = await token(client, email)
    me = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
    return Person(me.json()["id"], email, role, tokens["access_token"], tokens["refresh_token"])


async def account_exists(app: FastAPI, email: str) -> bool:
    async with app.state.sessionmaker() as session:
        return await session.scalar(select(Account.id).where(Account.email == email)) is not None


async def pairing_code(client: httpx.AsyncClient, therapist: Person) -> str:
    response = await client.post("/v1/pairing-codes", headers=therapist.headers)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


async def grant_by_code(
    client: httpx.AsyncClient, patient: Person, code: str, scopes: list[str] | None = None
) -> httpx.Response:
    body = {"pairing_code": code, "scopes": scopes or ALL_SCOPES}
    return await client.post("/v1/grants", json=body, headers=patient.headers)


# --- the acceptance path ---------------------------------------------------------------------


async def test_invite_register_pair_preview_grant_read_logout_and_deactivate(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    email = unique_email("dr")
    async with operator(settings) as session:
        invited = await therapists.invite(session, email, "Dr. Rowan Hale", "Harbor Clinic")
    assert invited.code.startswith("inv_")
    assert len(invited.code) > 40

    # Register: the invitation's name and clinic, verified; the code is used up.
    created = await sign_up(client, email.upper(), invited.code)
    assert created.status_code == 201, created.text
    account = created.json()
    assert (account["role"], account["verified"], account["display_name"], account["clinic"]) == (
        "therapist",
        True,
        "Dr. Rowan Hale",
        "Harbor Clinic",
    )
    therapist = await signed_in_as(client, email, "therapist")
    patient = await register(client, "patient", "Ada")
    await client.post(
        "/v1/checkins",
        json={"recorded_at": utcnow().isoformat(), "mood": 6},
        headers=patient.headers,
    )

    # Pair: a short human code; the patient previews it typed any which way.
    made = await client.post("/v1/pairing-codes", headers=therapist.headers)
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert CODE_SHAPE.match(code), code
    typed = code.lower().replace("-", " ")
    preview = await client.get(f"/v1/pairing-codes/{typed}", headers=patient.headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["therapist"] == {
        "display_name": "Dr. Rowan Hale",
        "clinic": "Harbor Clinic",
        "verified": True,
    }
    assert set(preview.json()) == {"therapist", "expires_at"}  # no id, no email

    # Grant with it: the grant names the verified therapist and their clinic.
    granted = await grant_by_code(client, patient, typed, ["checkins:read", "summary:read"])
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert grant["therapist"]["id"] == therapist.id
    assert (grant["therapist"]["verified"], grant["therapist"]["clinic"]) == (
        True,
        "Harbor Clinic",
    )

    # Read.
    read_token = await mint(client, therapist, grant["id"])
    checkins = f"/v1/patients/{patient.id}/checkins"
    assert (await client.get(checkins, headers=bearer(read_token))).status_code == 200
    log = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    assert (log[0]["therapist_name"], log[0]["therapist_verified"], log[0]["therapist_clinic"]) == (
        "Dr. Rowan Hale",
        True,
        "Harbor Clinic",
    )

    # Logout (RFC 7009 on the refresh token) ends the read token minted under that login.
    logout = await client.post("/v1/auth/revoke", data={"token": therapist.refresh_token})
    assert logout.status_code == 200
    assert_problem(await client.get(checkins, headers=bearer(read_token)), 401)

    # Signed in again: a new read token works, and so does the web view.
    therapist = await signed_in_as(client, email, "therapist")
    read_token = await mint(client, therapist, grant["id"])
    assert (await client.get(checkins, headers=bearer(read_token))).status_code == 200
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as web:
        assert (await web_sign_in(web, email)).status_code == 303
        assert (await web.get(f"/therapist/patients/{patient.id}")).status_code == 200

        # Deactivation ends everything at once: read token, login token, web session, grant.
        async with operator(settings) as session:
            await therapists.deactivate(session, email)
        assert_problem(await client.get(checkins, headers=bearer(read_token)), 401)
        assert_problem(await client.get("/v1/patients", headers=therapist.headers), 401)
        page = await web.get(f"/therapist/patients/{patient.id}")
        assert page.status_code == 303
        assert "/therapist/sign-in" in page.headers["location"]
        again = await web_sign_in(web, email)
        assert again.status_code == 403
        assert "deactivated" in again.text
    refused = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    ended = (await client.get(f"/v1/grants/{grant['id']}", headers=patient.headers)).json()
    assert (ended["state"], ended["revoked_by"]) == ("revoked", "operator")


# --- sign-up: the hostile cases --------------------------------------------------------------


async def test_sign_up_without_a_valid_code_is_403_and_creates_nothing(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    email, other = unique_email("dr"), unique_email("dr")
    async with operator(settings) as session:
        code = (await therapists.invite(session, email, "Dr. A", None)).code
        other_code = (await therapists.invite(session, other, "Dr. B", None)).code
        expired_email = unique_email("dr")
        expired = await therapists.invite(
            session, expired_email, "Dr. C", None, now=utcnow() - timedelta(days=8)
        )
        revoked_email = unique_email("dr")
        revoked = await therapists.invite(session, revoked_email, "Dr. D", None)
    async with operator(settings) as session:
        assert await therapists.revoke_invitation(session, revoked_email) == 1

    attempts = [
        (email, None),  # no code
        (email, "inv_" + "x" * 43),  # a made-up code
        (email, other_code),  # another invitation's code
        (expired_email, expired.code),  # expired (7 days)
        (revoked_email, revoked.code),  # revoked by the operator
    ]
    answers = []
    for address, attempt in attempts:
        response = await sign_up(client, address, attempt, display_name="Anyone")
        assert_problem(response, 403)
        answers.append(response.json())
        assert not await account_exists(app, address)
    assert all(answer == answers[0] for answer in answers)  # one answer for every wrong code

    # Trying to set `verified` (or anything else the schema does not name) is refused outright.
    for extra in ({"verified": True}, {"clinic": "Fake Clinic"}, {"id": str(uuid.uuid4())}):
        response = await sign_up(client, email, code, **extra)
        assert_problem(response, 422)
    # A patient cannot carry an invitation code, nor become verified by sending one.
    as_patient = await client.post(
        "/v1/accounts",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "display_name": "P",
            "role": "patient",
            "invitation_code": code,
        },
    )
    assert_problem(as_patient, 422)

    # None of the refusals used the code up: it works once, for its own email ...
    assert (await sign_up(client, email, code)).status_code == 201
    # ... and once only.
    second = await sign_up(client, unique_email("dr"), code)
    assert_problem(second, 403)
    reused = await sign_up(client, email, code)
    assert reused.status_code in (403, 409)
    # The other invitation was never touched by the attempt with its code.
    assert (await sign_up(client, other, other_code)).status_code == 201


async def test_patients_sign_up_as_before(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/accounts",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "display_name": "Sam",
            "role": "patient",
        },
    )
    assert response.status_code == 201
    assert response.json()["verified"] is False
    nameless = await client.post(
        "/v1/accounts", json={"email": unique_email(), "password": PASSWORD, "role": "patient"}
    )
    assert_problem(nameless, 422)


async def test_inviting_again_replaces_the_pending_invitation(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email("dr")
    first = await invite(email)
    second = await invite(email)
    async with operator(settings) as session:
        states = [line.state for line in await therapists.listing(session) if line.email == email]
    assert states == ["invited"]  # one pending invitation: the first was replaced
    assert_problem(await sign_up(client, email, first), 403)
    assert (await sign_up(client, email, second)).status_code == 201
    with pytest.raises(therapists.OperatorError):
        await invite(email)  # the account exists now


# --- pairing codes ---------------------------------------------------------------------------


async def test_who_may_make_and_use_pairing_codes(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    # A patient cannot make one; a therapist cannot preview or grant with one.
    assert_problem(await client.post("/v1/pairing-codes", headers=patient.headers), 403)
    code = await pairing_code(client, therapist)
    assert_problem(await client.get(f"/v1/pairing-codes/{code}", headers=therapist.headers), 403)
    assert_problem(await grant_by_code(client, therapist, code), 403)
    assert_problem(await client.get(f"/v1/pairing-codes/{code}"), 401)
    # Still unused: the patient can have it.
    assert (await grant_by_code(client, patient, code)).status_code == 201


async def test_wrong_used_and_expired_codes_get_one_and_the_same_404(
    client: httpx.AsyncClient, app: FastAPI, therapist: Person
) -> None:
    patients = [await register(client) for _ in range(2)]
    used = await pairing_code(client, therapist)
    assert (await grant_by_code(client, patients[0], used)).status_code == 201
    expired = await pairing_code(client, therapist)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(PairingCode)
            .where(PairingCode.therapist_id == uuid.UUID(therapist.id))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    wrong = "ABCD-EFGH-JKMN"
    malformed = "not a code at all"
    bodies = []
    for code in (used, expired, wrong, malformed):
        for response in (
            await client.get(f"/v1/pairing-codes/{code}", headers=patients[1].headers),
            await grant_by_code(client, patients[1], code),
        ):
            assert_problem(response, 404)
            bodies.append(response.json())
    assert all(body == bodies[0] for body in bodies)
    grants = (await client.get("/v1/grants", headers=patients[1].headers)).json()["items"]
    assert grants == []


async def test_a_code_pairs_once_even_when_two_patients_race(
    client: httpx.AsyncClient, therapist: Person
) -> None:
    first, second = await register(client), await register(client)
    code = await pairing_code(client, therapist)
    answers = sorted([(await grant_by_code(client, p, code)).status_code for p in (first, second)])
    assert answers == [201, 404]


async def test_unverified_therapists_keep_grants_but_receive_none(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, patient: Person
) -> None:
    """A therapist from before invitations (migrated unverified): their grants go on; no new
    grant reaches them, by email or by code, until the operator verifies them."""
    therapist = await register(client, "therapist")
    kept = await give_grant(client, patient, therapist)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Account).where(Account.id == uuid.UUID(therapist.id)).values(verified=False)
        )
    read_token = await mint(client, therapist, kept["id"])
    assert (
        await client.get(f"/v1/patients/{patient.id}/checkins", headers=bearer(read_token))
    ).status_code == 200
    assert_problem(await client.post("/v1/pairing-codes", headers=therapist.headers), 403)

    # By email: the same answer as an address nobody has, or a patient's.
    other_patient = await register(client)
    answers = []
    for address in (therapist.email, "nobody-at-all@example.org", other_patient.email):
        response = await client.post(
            "/v1/grants",
            json={"therapist_email": address, "scopes": ["checkins:read"]},
            headers=patient.headers,
        )
        assert_problem(response, 422)
        answers.append(response.json())
    assert answers[0] == answers[1] == answers[2]

    async with operator(settings) as session:
        await therapists.verify(session, therapist.email)
    again = await client.post(
        "/v1/grants",
        json={"therapist_email": therapist.email, "scopes": ["checkins:read"]},
        headers=patient.headers,
    )
    assert again.status_code == 201, again.text


async def test_a_grant_names_the_therapist_one_way(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    code = await pairing_code(client, therapist)
    for body in (
        {"scopes": ["checkins:read"]},
        {"pairing_code": code, "therapist_email": therapist.email, "scopes": ["checkins:read"]},
    ):
        response = await client.post("/v1/grants", json=body, headers=patient.headers)
        assert_problem(response, 422)


# --- guessing --------------------------------------------------------------------------------


@pytest.fixture
async def default_limits(settings: Settings, tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the pairing limits as shipped (the suite's own are lifted)."""
    from api.app import create_app
    from tests.conftest import make_settings

    shipped = Settings()
    application = create_app(
        make_settings(
            tmp_path,
            settings.database_url,
            rate_limit_key_prefix=f"test-{uuid.uuid4().hex}",
            rate_limit_pairing_per_account=shipped.rate_limit_pairing_per_account,
            rate_limit_pairing_per_address=shipped.rate_limit_pairing_per_address,
        )
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with conforming_client(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_guessing_codes_hits_429_long_before_a_meaningful_share_of_the_space(
    default_limits: httpx.AsyncClient,
) -> None:
    client = default_limits
    patient = await register(client)
    guesses = 0
    while True:
        guess = "".join(secrets.choice(ALPHABET) for _ in range(12))
        assert normalize(guess) is not None  # well-formed: it is looked up, and counted
        if guesses % 2:
            response = await client.get(f"/v1/pairing-codes/{guess}", headers=patient.headers)
        else:
            response = await grant_by_code(client, patient, guess)
        if response.status_code == 429:
            break
        assert_problem(response, 404)
        guesses += 1
        assert guesses <= 1000, "no limit on guessing pairing codes"
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    # A code has about 59 bits and lives 10 minutes: what one patient may try before the limit
    # is a vanishing share of the space (here, per hour, less than one in 10^16).
    assert BITS >= 40
    assert guesses / len(ALPHABET) ** 12 < 1e-16
    # Another patient behind the same address has a budget of their own, up to the address's.
    other = await register(client)
    assert_problem(await client.get("/v1/pairing-codes/ABCD-EFGH-JKMN", headers=other.headers), 404)


async def test_the_address_limit_holds_across_patients(settings: Settings, tmp_path: Any) -> None:
    from api.app import create_app
    from tests.conftest import make_settings

    application = create_app(
        make_settings(
            tmp_path,
            settings.database_url,
            rate_limit_key_prefix=f"test-{uuid.uuid4().hex}",
            rate_limit_pairing_per_account="100/hour",
            rate_limit_pairing_per_address="3/hour",
        )
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with conforming_client(transport=transport, base_url="http://testserver") as client:
            statuses = []
            for _ in range(4):
                patient = await register(client)  # a fresh patient each time, one address
                response = await client.get(
                    "/v1/pairing-codes/ABCD-EFGH-JKMN", headers=patient.headers
                )
                statuses.append(response.status_code)
    assert statuses == [404, 404, 404, 429]


# --- read tokens end with the login ----------------------------------------------------------


async def test_revoking_a_read_token_ends_it_alone(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    checkins = f"/v1/patients/{patient.id}/checkins"
    assert (await client.get(checkins, headers=bearer(read_token))).status_code == 200
    for _ in range(2):  # a second revocation changes nothing and still answers 200
        revoked = await client.post("/v1/auth/revoke", data={"token": read_token})
        assert revoked.status_code == 200
    assert_problem(await client.get(checkins, headers=bearer(read_token)), 401)
    # The therapist's login goes on, and mints a read token that works.
    assert (await client.get("/v1/patients", headers=therapist.headers)).status_code == 200
    fresh = await mint(client, therapist, grant["id"])
    assert (await client.get(checkins, headers=bearer(fresh))).status_code == 200


async def test_a_password_change_ends_read_tokens_of_other_logins(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    elsewhere = await signed_in_as(client, therapist.email, "therapist")
    stolen = await mint(client, elsewhere, grant["id"])
    own = await mint(client, therapist, grant["id"])
    me = await client.get("/v1/me", headers=therapist.headers)
    changed = await client.patch(
        "/v1/me",
        json={"password": "another long passphrase", "current_password": PASSWORD},
        headers={**therapist.headers, "If-Match": me.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    checkins = f"/v1/patients/{patient.id}/checkins"
    assert_problem(await client.get(checkins, headers=bearer(stolen)), 401)
    assert (await client.get(checkins, headers=bearer(own))).status_code == 200


# --- what stays off a patient's access log ---------------------------------------------------


async def test_asking_about_a_patient_who_never_shared_is_kept_for_the_operator(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, patient: Person
) -> None:
    therapist = await register(client, "therapist")
    stranger = await register(client)
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    for someone in (stranger.id, str(uuid.uuid4())):
        response = await client.get(f"/v1/patients/{someone}/checkins", headers=bearer(read_token))
        assert_problem(response, 404)
    # Through the web view too.
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as web:
        await web_sign_in(web, therapist.email)
        assert (await web.get(f"/therapist/patients/{stranger.id}")).status_code == 404

    assert (await client.get("/v1/me/access-log", headers=stranger.headers)).json()["items"] == []
    async with app.state.sessionmaker() as session:
        about_stranger = await session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.patient_id == uuid.UUID(stranger.id))
        )
        stray = await session.scalar(
            select(func.count())
            .select_from(StrayRequest)
            .where(StrayRequest.therapist_id == uuid.UUID(therapist.id))
        )
    assert (about_stranger, stray) == (0, 3)
    async with operator(settings) as session:
        lines = {line.email: line for line in await therapists.listing(session)}
    assert lines[therapist.email].stray_requests == 3
    assert lines[therapist.email].state == "verified"


async def test_a_patient_who_did_share_still_sees_the_refusal(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """A therapist reading a former patient through another patient's token: that patient shared
    once, so the refusal is theirs to see, as before."""
    former = await register(client)
    ended = await give_grant(client, former, therapist)
    await client.delete(f"/v1/grants/{ended['id']}", headers=former.headers)
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    response = await client.get(f"/v1/patients/{former.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 404)
    log = (await client.get("/v1/me/access-log", headers=former.headers)).json()["items"]
    assert [entry["outcome"] for entry in log] == ["not_found"]


async def test_an_ended_grant_keeps_the_name_it_ended_with(
    client: httpx.AsyncClient, therapist: Person
) -> None:
    patient = await register(client, "patient", "Ada")
    grant = await give_grant(client, patient, therapist)

    async def rename(name: str) -> None:
        me = await client.get("/v1/me", headers=patient.headers)
        response = await client.patch(
            "/v1/me",
            json={"display_name": name},
            headers={**patient.headers, "If-Match": me.headers["etag"]},
        )
        assert response.status_code == 200

    async def seen_by_therapist() -> str:
        response = await client.get(f"/v1/grants/{grant['id']}", headers=therapist.headers)
        name: str = response.json()["patient"]["display_name"]
        return name

    await rename("Ada L.")
    assert await seen_by_therapist() == "Ada L."  # live: the current name
    listed = (await client.get("/v1/patients", headers=therapist.headers)).json()["items"]
    assert [item["display_name"] for item in listed] == ["Ada L."]
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    await rename("Someone Else Entirely")
    assert await seen_by_therapist() == "Ada L."  # ended: the name it ended with
    own = await client.get(f"/v1/grants/{grant['id']}", headers=patient.headers)
    assert own.json()["patient"]["display_name"] == "Someone Else Entirely"


# --- the web view's button -------------------------------------------------------------------


async def test_the_patient_list_makes_a_pairing_code(
    client: httpx.AsyncClient, app: FastAPI, therapist: Person, patient: Person
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as web:
        assert (await web_sign_in(web, therapist.email)).status_code == 303
        home = await web.get("/therapist/")
        assert "Make a pairing code" in home.text
        forged = await web.post("/therapist/pairing-codes", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        made = await web.post("/therapist/pairing-codes", data={"csrf_token": csrf_of(home.text)})
        assert made.status_code == 200, made.text
        assert made.headers["cache-control"] == "no-store"
        found = re.search(r'id="pairing-code">([^<]+)<', made.text)
        assert found is not None
    code = found.group(1)
    assert CODE_SHAPE.match(code)
    assert (await grant_by_code(client, patient, code)).status_code == 201


async def test_an_ended_read_token_is_refused_without_a_word_to_the_patient(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    """A read token whose login ended, or that was revoked, is over like an expired one: 401 for
    the bearer, and nothing in the patient's access log (the grant itself never ended)."""
    grant = await give_grant(client, patient, therapist)
    revoked = await mint(client, therapist, grant["id"])
    await client.post("/v1/auth/revoke", data={"token": revoked})
    logged_out = await mint(client, therapist, grant["id"])
    await client.post("/v1/auth/revoke", data={"token": therapist.access_token})
    stranger = await register(client)
    for read_token in (revoked, logged_out):
        for whom in (patient.id, stranger.id):
            response = await client.get(f"/v1/patients/{whom}/checkins", headers=bearer(read_token))
            assert_problem(response, 401)
    for person in (patient, stranger):
        log = (await client.get("/v1/me/access-log", headers=person.headers)).json()["items"]
        # The patient sees each minting ("opened your journal"), and nothing of the refusals.
        minted = 2 if person is patient else 0
        assert [(e["resource"], e["action"], e["outcome"]) for e in log] == [
            ("grant", "open", "allowed")
        ] * minted


async def test_a_stray_request_with_an_ended_grant_stays_off_the_log_too(
    client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    grant = await give_grant(client, patient, therapist)
    read_token = await mint(client, therapist, grant["id"])
    await client.delete(f"/v1/grants/{grant['id']}", headers=patient.headers)
    stranger = await register(client)
    response = await client.get(f"/v1/patients/{stranger.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 401)  # the grant first, as for any other request
    log = await client.get("/v1/me/access-log", headers=stranger.headers)
    assert log.json()["items"] == []
    # The grant's own patient sees the refusal as before: permission had ended.
    response = await client.get(f"/v1/patients/{patient.id}/checkins", headers=bearer(read_token))
    assert_problem(response, 401)
    own = (await client.get("/v1/me/access-log", headers=patient.headers)).json()["items"]
    refusals = [entry["outcome"] for entry in own if entry["action"] != "open"]
    assert refusals == ["no_grant"]
