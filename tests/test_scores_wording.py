"""Nothing the service shows reads as a diagnosis, and no figure claims more than it can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.support.browser import web_sign_in
from tests.support.conformance import conforming_client
from tests.support.journal import iso, now
from tests.support.people import Person
from tests.support.sharing import give_grant

# Every PCL-5 item at 2: endorsed in every cluster, total 40.
MEETS_PATTERN = [2] * 20


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with conforming_client(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_pcl5_pattern_is_a_screening_result(
    client: httpx.AsyncClient, patient: Person
) -> None:
    response = await client.post(
        "/v1/assessments",
        json={"instrument": "pcl5", "answers": MEETS_PATTERN},
        headers=patient.headers,
    )
    body = response.json()
    assert body["meets_symptom_pattern"] is True
    assert body["provisional_diagnosis"] is True  # the deprecated name, for v1 clients
    assert body["screening_result"] == (
        "Meets the PCL-5 symptom pattern; confirm with a clinical interview such as CAPS-5."
    )
    assert "diagnos" not in body["screening_result"].lower()
    spec = (await client.get("/openapi.json")).json()
    field = spec["components"]["schemas"]["AssessmentRead"]["properties"]["provisional_diagnosis"]
    assert field["deprecated"] is True


async def test_a_pcl5_without_the_pattern_says_so_and_a_phq9_has_no_screening_result(
    client: httpx.AsyncClient, patient: Person
) -> None:
    """The other answers of the screening rule: a PCL-5 that does not meet the pattern says so
    in words (not an empty or a positive result), and PHQ-9 has no pattern to screen for."""
    # Every item at 1: nothing endorsed (the pattern counts items at 2 or more), total 20.
    none_endorsed = [1] * 20
    response = await client.post(
        "/v1/assessments",
        json={"instrument": "pcl5", "answers": none_endorsed},
        headers=patient.headers,
    )
    body = response.json()
    assert body["meets_symptom_pattern"] is False
    assert body["screening_result"] == "Does not meet the PCL-5 symptom pattern."
    response = await client.post(
        "/v1/assessments",
        json={"instrument": "phq9", "answers": [0] * 9},
        headers=patient.headers,
    )
    assert response.json()["screening_result"] is None


async def test_the_therapists_page_never_says_diagnosis_nor_overclaims_response(
    client: httpx.AsyncClient, patient: Person, therapist: Person, web: httpx.AsyncClient
) -> None:
    for days_ago, instrument, answers in [
        (3, "pcl5", MEETS_PATTERN),
        (3, "phq9", [1, 1, 1, 0, 0, 0, 0, 0, 0]),
        (1, "phq9", [1, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]:
        response = await client.post(
            "/v1/assessments",
            json={
                "instrument": instrument,
                "answers": answers,
                "completed_at": iso(now() - timedelta(days=days_ago)),
            },
            headers=patient.headers,
        )
        assert response.status_code == 201, response.text
    await give_grant(client, patient, therapist)
    assert (await web_sign_in(web, therapist.email)).status_code == 303
    html = (await web.get(f"/therapist/patients/{patient.id}")).text
    assert "diagnos" not in html.lower()
    assert "Meets the PCL-5 symptom pattern" in html
    # PHQ-9 3 -> 1 with no dosing session: no "yes" for response or remission, and why.
    assert "not judged: No dosing session yet" in html
    assert 'tag-good">yes' not in html
    assert "Computed from what the patient shared with you only" in html
