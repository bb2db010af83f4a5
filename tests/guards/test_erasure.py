"""Erasure: what goes with a therapist, and what happens when PostgreSQL picks the erasure as
a deadlock's victim (it runs again, a bounded number of times, and then either everything is
gone, 204, or nothing is: an error, the account intact).

No test can make PostgreSQL choose the erasure among two deadlocked transactions on demand, so
a trigger on this one account's row raises the very error PostgreSQL raises then
(``deadlock_detected``, SQLSTATE 40P01) for the first few deletes. Its count is a sequence:
sequences are not rolled back with the savepoint that each attempt's failure rolls back.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from api.accounts.service import ERASURE_ATTEMPTS
from api.models import Erasure
from tests.support.journal import assert_problem, create
from tests.support.people import PASSWORD, Person, register


async def erase_meeting_deadlocks(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, deadlocks: int
) -> tuple[httpx.Response, int]:
    """Send the patient's erasure with its first ``deadlocks`` deletes of the account refused as
    a deadlock's victim; the answer, and how many times the erasure tried."""
    tag = uuid.uuid4().hex[:12]
    statements = [
        f"CREATE SEQUENCE deadlocks_{tag}",
        f"""CREATE FUNCTION deadlock_{tag}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.id = '{patient.id}'::uuid AND nextval('deadlocks_{tag}') <= {deadlocks} THEN
                RAISE EXCEPTION 'deadlock forced by the test' USING ERRCODE = 'deadlock_detected';
            END IF;
            RETURN OLD;
        END $$""",
        f"CREATE TRIGGER deadlock_{tag} BEFORE DELETE ON accounts "
        f"FOR EACH ROW EXECUTE FUNCTION deadlock_{tag}()",
    ]
    async with app.state.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    try:
        answer = await client.request(
            "DELETE", "/v1/me", json={"password": PASSWORD}, headers=patient.headers
        )
        async with app.state.engine.connect() as connection:
            # One nextval per delete that reached the account row: its attempts.
            attempts = (
                await connection.execute(text(f"SELECT last_value FROM deadlocks_{tag}"))  # noqa: S608
            ).scalar_one()
            await connection.rollback()
    finally:
        async with app.state.engine.begin() as connection:
            await connection.execute(text(f"DROP TRIGGER deadlock_{tag} ON accounts"))
            await connection.execute(text(f"DROP FUNCTION deadlock_{tag}()"))
            await connection.execute(text(f"DROP SEQUENCE deadlocks_{tag}"))
    return answer, int(attempts)


async def erasures(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Erasure)) or 0)


@pytest.mark.postgres_only
async def test_an_erasure_chosen_as_a_deadlock_victim_runs_again_and_erases_everything(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    patient = await register(client)
    await create(client, patient, "checkins")
    before = await erasures(app)
    answer, attempts = await erase_meeting_deadlocks(
        app, client, patient, deadlocks=ERASURE_ATTEMPTS - 1
    )
    assert answer.status_code == 204, answer.text
    assert attempts == ERASURE_ATTEMPTS
    assert_problem(await client.get("/v1/me", headers=patient.headers), 401)
    signed_in = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": patient.email, "password": PASSWORD},
    )
    assert signed_in.status_code == 400
    assert await erasures(app) == before + 1


@pytest.mark.postgres_only
async def test_an_erasure_that_is_a_deadlock_victim_every_time_erases_nothing_and_says_so(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Never a 204 for an erasure that did not happen: the patient is told to try again, and
    everything of theirs is still there."""
    patient = await register(client)
    checkin = await create(client, patient, "checkins")
    before = await erasures(app)
    answer, attempts = await erase_meeting_deadlocks(
        app, client, patient, deadlocks=ERASURE_ATTEMPTS
    )
    assert_problem(answer, 503)
    assert "Retry-After" in answer.headers
    assert attempts == ERASURE_ATTEMPTS
    me = await client.get("/v1/me", headers=patient.headers)
    assert me.status_code == 200
    assert me.json()["email"] == patient.email
    kept = await client.get(f"/v1/checkins/{checkin['id']}", headers=patient.headers)
    assert kept.status_code == 200
    assert await erasures(app) == before


async def give_grant_once(
    client: httpx.AsyncClient, patient: Person, therapist: Person, key: str
) -> httpx.Response:
    body = {"therapist_email": therapist.email, "scopes": ["checkins:read"]}
    return await client.post(
        "/v1/grants", json=body, headers={**patient.headers, "Idempotency-Key": key}
    )


async def stored_keys(client: httpx.AsyncClient, patient: Person) -> set[str]:
    export = await client.get("/v1/me/export", headers=patient.headers)
    assert export.status_code == 200, export.text
    return {answer["idempotency_key"] for answer in export.json()["stored_answers"]}


async def test_erasing_a_therapist_takes_the_answers_naming_them_and_no_other(
    client: httpx.AsyncClient,
) -> None:
    """A patient's stored answer to a grant names the therapist: it goes with the therapist.
    The answers of the same patient to anything else, and of other patients to other
    therapists, stay, and still replay."""
    erased, colleague = await register(client, "therapist"), await register(client, "therapist")
    ada, bea = await register(client), await register(client)
    assert (await give_grant_once(client, ada, erased, "to-erased")).status_code == 201
    assert (await give_grant_once(client, ada, colleague, "to-colleague")).status_code == 201
    first = await give_grant_once(client, bea, colleague, "bea-to-colleague")
    assert first.status_code == 201
    erasure = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=erased.headers
    )
    assert erasure.status_code == 204, erasure.text
    assert await stored_keys(client, ada) == {"to-colleague"}
    assert await stored_keys(client, bea) == {"bea-to-colleague"}
    again = await give_grant_once(client, bea, colleague, "bea-to-colleague")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
