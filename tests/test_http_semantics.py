"""HTTP as RFC 9110 has it, on every path of the spec: HEAD wherever GET, a 405 whose `Allow`
names every method of the path, and a body of the wrong media type refused with a 415 problem."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.entries import RESOURCES, body
from tests.support.people import Person
from tests.support.sharing import bearer, give_grant, mint

# Headers that differ between any two answers, whatever the method.
VOLATILE = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset", "content-length"}
PARAMETER = re.compile(r"\{(\w+)\}")


def spec_operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return paths


def fill(template: str, values: dict[str, str]) -> str:
    return PARAMETER.sub(lambda m: values[m.group(1)], template)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_head_answers_wherever_get_does(
    app: FastAPI, client: httpx.AsyncClient, patient: Person, therapist: Person
) -> None:
    entries = {
        resource: (
            await client.post(f"/v1/{resource}", headers=patient.headers, json=body(resource))
        ).json()["id"]
        for resource in RESOURCES
    }
    grant = await give_grant(client, patient, therapist)
    read = bearer(await mint(client, therapist, grant["id"]))
    pairing = await client.post("/v1/pairing-codes", headers=therapist.headers)
    assert pairing.status_code == 201, pairing.text
    gets = [path for path, item in spec_operations(app).items() if "get" in item]
    assert len(gets) >= 25
    for template in [*gets, "/openapi.json", "/docs"]:
        resource = next((r for r in RESOURCES if f"/{r}/" in template), None)
        values = {
            "entry_id": entries.get(resource or "", ""),
            "grant_id": grant["id"],
            "patient_id": str(patient.id),
            "code": pairing.json()["code"],
        }
        path = fill(template, values)
        headers = (
            read
            if template.startswith("/v1/patients/")
            else therapist.headers
            if template == "/v1/patients"
            else patient.headers
        )
        params = {"cursor": "0"} if template == "/v1/sync" else {}
        get = await client.get(path, headers=headers, params=params)
        head = await client.head(path, headers=headers, params=params)
        assert get.status_code == 200, (template, get.text)
        assert head.status_code == 200, template
        assert head.content == b"", template
        same = {k: v for k, v in get.headers.items() if k not in VOLATILE}
        assert {k: v for k, v in head.headers.items() if k not in VOLATILE} == same, template


async def test_a_405_lists_every_method_the_path_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    operations = spec_operations(app)
    collections_with_two_methods = 0
    for template, item in operations.items():
        path = PARAMETER.sub(lambda _m: str(uuid.uuid4()), template)
        response = await client.request("PUT", path)  # no operation of this API is a PUT
        assert_problem(response, 405)
        methods = {m.upper() for m in item}
        if "GET" in methods:
            methods.add("HEAD")
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == methods, template
        collections_with_two_methods += {"GET", "POST"} <= methods
    # Paths that two routes serve are where Starlette alone named only the first route's method.
    assert collections_with_two_methods >= 7


async def test_a_body_of_the_wrong_media_type_is_a_415_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, patient: Person
) -> None:
    operations = spec_operations(app)
    refused = 0
    for template, item in operations.items():
        path = PARAMETER.sub(lambda _m: str(uuid.uuid4()), template)
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            assert "415" in operation["responses"], (method, template)
            [reads] = operation["requestBody"]["content"]
            form = reads == "application/x-www-form-urlencoded"
            wrong = [
                ("text/plain", b"mood=6"),
                (
                    ("application/json", b'{"grant_type": "password"}')
                    if form
                    else ("application/x-www-form-urlencoded", b"mood=6")
                ),
                ("application/xml", b"<mood>6</mood>"),
            ]
            for content_type, content in wrong:
                response = await client.request(
                    method.upper(),
                    path,
                    content=content,
                    headers={**patient.headers, "Content-Type": content_type},
                )
                assert_problem(response, 415)
                assert reads in response.json()["detail"]
                refused += 1
    assert refused >= 3 * 15
    for resource in RESOURCES:
        listed = await client.get(f"/v1/{resource}", headers=patient.headers)
        assert listed.json()["items"] == [], resource


async def test_the_right_media_type_with_parameters_is_read(
    client: httpx.AsyncClient, patient: Person
) -> None:
    # A charset parameter or a +json type is still JSON.
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        headers = {**patient.headers, "Content-Type": content_type}
        response = await client.post("/v1/checkins", content=b'{"mood": 6}', headers=headers)
        assert response.status_code == 201, (content_type, response.text)
    # A body without a type is not guessed at.
    untyped = await client.post("/v1/checkins", content=b'{"mood": 6}', headers=patient.headers)
    assert_problem(untyped, 415)
    assert "without Content-Type" in untyped.json()["detail"]
