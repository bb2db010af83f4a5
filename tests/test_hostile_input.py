"""Hostile input: bodies at and past the size limit, JSON nested past any sense, absurd page
sizes, Unicode edge cases in every free-text field, wrong content types, times at the ends of the
calendar. Each gets a clear 4xx problem the spec documents, or normal handling, never a 500; a
refused request stores nothing, and what is stored comes back exactly as it was sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.support.entries import EDITABLE, RESOURCES
from tests.support.entries import body as valid_body
from tests.support.hostile import (
    DISPLAY_NAME_LIMIT,
    JOURNAL_TEXT,
    KEPT,
    REFUSED,
    TextField,
    assert_refused,
    error_locations,
    json_bytes,
    operations_with_body,
    operations_with_query,
    security_scheme,
)
from tests.support.journal import list_ids
from tests.support.people import PASSWORD, Person, token, unique_email
from tests.support.sharing import bearer, give_grant, mint

Json = dict[str, Any]
JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024


def padded(document: bytes, size: int) -> bytes:
    """``document`` grown to exactly ``size`` bytes with insignificant JSON whitespace."""
    assert len(document) <= size
    return document + b" " * (size - len(document))


async def create(client: httpx.AsyncClient, person: Person, resource: str) -> Json:
    response = await client.post(
        f"/v1/{resource}", json=valid_body(resource), headers=person.headers
    )
    assert response.status_code == 201, response.text
    entry: Json = response.json()
    return entry


async def read(client: httpx.AsyncClient, person: Person, path: str) -> httpx.Response:
    response = await client.get(path, headers=person.headers)
    assert response.status_code == 200, response.text
    return response


async def email_is_free(client: httpx.AsyncClient, email: str) -> bool:
    """Registering the address works: no account was left behind under it."""
    account = {"email": email, "password": PASSWORD, "display_name": "Probe", "role": "patient"}
    response = await client.post("/v1/accounts", json=account)
    assert response.status_code in {201, 409}, response.text
    return response.status_code == 201


# ---------------------------------------------------------------------------------------------
# Body size: 1 MiB is accepted and handled; one byte more is 413 and nothing is stored.


def test_the_body_limit_is_one_mebibyte(settings: Settings) -> None:
    assert settings.max_body_bytes == MIB


@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_body_of_exactly_the_limit_is_handled(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    content = padded(json_bytes(valid_body(resource), escaped=False), MIB)
    response = await client.post(
        f"/v1/{resource}", content=content, headers={**patient.headers, **JSON}
    )
    assert response.status_code == 201, response.text
    assert await list_ids(client, patient, resource) == {response.json()["id"]}


@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_body_one_byte_over_the_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str
) -> None:
    content = padded(json_bytes(valid_body(resource), escaped=False), MIB + 1)
    response = await client.post(
        f"/v1/{resource}", content=content, headers={**patient.headers, **JSON}
    )
    assert_refused(response, "POST", f"/v1/{resource}")
    assert response.status_code == 413
    assert await list_ids(client, patient, resource) == set()


@pytest.mark.parametrize(("method", "template", "media_type"), operations_with_body())
async def test_every_body_one_byte_over_the_limit_is_a_413_problem(
    client: httpx.AsyncClient, patient: Person, method: str, template: str, media_type: str
) -> None:
    path = template.replace("{entry_id}", str(uuid.uuid4())).replace(
        "{grant_id}", str(uuid.uuid4())
    )
    content = b"{}" if media_type == "application/json" else b"scope="
    response = await client.request(
        method,
        path,
        content=padded(content, MIB + 1),
        headers={**patient.headers, "Content-Type": media_type},
    )
    assert_refused(response, method, template)
    assert response.status_code == 413


def chunks(content: bytes, size: int = 64 * 1024) -> Callable[[], AsyncIterator[bytes]]:
    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(content), size):
            yield content[start : start + size]

    return stream


@pytest.mark.parametrize(("size", "stored"), [(MIB, True), (MIB + 1, False)])
async def test_a_streamed_body_without_a_length_is_held_to_the_same_limit(
    client: httpx.AsyncClient, patient: Person, size: int, stored: bool
) -> None:
    content = padded(json_bytes(valid_body("checkins"), escaped=False), size)
    response = await client.post(
        "/v1/checkins", content=chunks(content)(), headers={**patient.headers, **JSON}
    )
    assert "content-length" not in response.request.headers
    if stored:
        assert response.status_code == 201, response.text
    else:
        assert_refused(response, "POST", "/v1/checkins")
        assert response.status_code == 413
    assert len(await list_ids(client, patient, "checkins")) == (1 if stored else 0)


async def test_an_oversize_account_registration_is_413_and_creates_no_account(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email("big")
    account = {"email": email, "password": PASSWORD, "display_name": "Big", "role": "patient"}
    content = padded(json_bytes(account, escaped=False), MIB + 1)
    response = await client.post("/v1/accounts", content=content, headers=JSON)
    assert_refused(response, "POST", "/v1/accounts")
    assert response.status_code == 413
    assert await email_is_free(client, email)


# ---------------------------------------------------------------------------------------------
# JSON nested 10,000 deep: a clear 4xx, never a 500 (nor a crashed worker), nothing stored.

DEPTH = 10_000


def deep_arrays(depth: int = DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_objects(depth: int = DEPTH) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


DEEP: dict[str, Callable[[], bytes]] = {
    "arrays": deep_arrays,
    "objects": deep_objects,
    "in_a_field": lambda: b'{"mood": 5, "note": ' + deep_arrays() + b"}",
    "in_a_list": lambda: b'{"mood": 5, "note": "x", "extra": [' + deep_objects() + b"]}",
}


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize("resource", RESOURCES)
async def test_deep_json_to_a_create_is_a_clear_4xx(
    client: httpx.AsyncClient, patient: Person, resource: str, shape: str
) -> None:
    response = await client.post(
        f"/v1/{resource}", content=DEEP[shape](), headers={**patient.headers, **JSON}
    )
    assert_refused(response, "POST", f"/v1/{resource}")
    assert await list_ids(client, patient, resource) == set()


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize("resource", EDITABLE)
async def test_deep_json_to_an_edit_is_a_clear_4xx_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, shape: str
) -> None:
    entry = await create(client, patient, resource)
    path = f"/v1/{resource}/{entry['id']}"
    response = await client.patch(
        path,
        content=DEEP[shape](),
        headers={**patient.headers, **JSON, "If-Match": f'"{entry["version"]}"'},
    )
    assert_refused(response, "PATCH", f"/v1/{resource}/{{entry_id}}")
    assert (await read(client, patient, path)).json() == entry


ELSEWHERE = [
    ("POST", "/v1/accounts"),
    ("PATCH", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("POST", "/v1/grants"),
    ("POST", "/v1/sync"),
]


@pytest.mark.parametrize("shape", DEEP)
@pytest.mark.parametrize(("method", "template"), ELSEWHERE)
async def test_deep_json_elsewhere_is_a_clear_4xx_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, method: str, template: str, shape: str
) -> None:
    me = await read(client, patient, "/v1/me")
    headers = {
        **patient.headers,
        **JSON,
        "If-Match": me.headers["ETag"],
        "Idempotency-Key": str(uuid.uuid4()),
    }
    response = await client.request(method, template, content=DEEP[shape](), headers=headers)
    assert_refused(response, method, template)
    assert (await read(client, patient, "/v1/me")).json() == me.json()
    assert (await read(client, patient, "/v1/grants")).json()["items"] == []
    assert await list_ids(client, patient, "checkins") == set()


# ---------------------------------------------------------------------------------------------
# Page sizes: every `limit` the spec offers refuses the absurd with a 422 naming `limit`.

LIMITED = operations_with_query("limit")
ABSURD_LIMITS = [str(10**9), "-1", "1e3", "0", str(2**64), "NaN", "", "ten"]


def test_every_list_is_covered() -> None:
    # The 5 journal lists, the therapist's 5 views, grants, sync and the access log, at least.
    assert len(LIMITED) >= 13


@pytest.fixture
async def read_token(client: httpx.AsyncClient, patient: Person, therapist: Person) -> str:
    grant = await give_grant(client, patient, therapist)
    return await mint(client, therapist, grant["id"])


@pytest.mark.parametrize("limit", ABSURD_LIMITS)
@pytest.mark.parametrize(("method", "template"), LIMITED)
async def test_an_absurd_page_size_is_a_422_problem(
    client: httpx.AsyncClient,
    patient: Person,
    read_token: str,
    method: str,
    template: str,
    limit: str,
) -> None:
    headers = (
        bearer(read_token)
        if security_scheme(method, template) == "patient_read"
        else patient.headers
    )
    path = template.replace("{patient_id}", patient.id)
    response = await client.get(path, params={"limit": limit}, headers=headers)
    problem = assert_refused(response, method, template)
    assert response.status_code == 422
    assert ["query", "limit"] in error_locations(problem)


# ---------------------------------------------------------------------------------------------
# Unicode in every free-text field: kept exactly, or refused with a 422 naming the field.


def field_id(field: TextField) -> str:
    return field.name


@pytest.mark.parametrize("escaped", [False, True], ids=["utf8", "escaped"])
@pytest.mark.parametrize("value", KEPT)
@pytest.mark.parametrize("field", JOURNAL_TEXT, ids=field_id)
async def test_text_is_stored_and_returned_exactly(
    client: httpx.AsyncClient, patient: Person, field: TextField, value: str, escaped: bool
) -> None:
    text = KEPT[value](field.limit)
    data = valid_body(field.resource)
    field.put(data, text)
    response = await client.post(
        f"/v1/{field.resource}",
        content=json_bytes(data, escaped=escaped),
        headers={**patient.headers, **JSON},
    )
    assert response.status_code == 201, response.text
    assert field.get(response.json()) == text
    entry_id = response.json()["id"]
    stored = await read(client, patient, f"/v1/{field.resource}/{entry_id}")
    assert field.get(stored.json()) == text
    # On the wire, byte for byte: the text's UTF-8, as a JSON string.
    assert json_bytes(text, escaped=False) in stored.content
    # And the same through the list and through sync.
    page = await read(client, patient, f"/v1/{field.resource}?limit=200")
    assert [field.get(item) for item in page.json()["items"]] == [text]
    pulled = await read(client, patient, "/v1/sync?cursor=0")
    assert [field.get(item) for item in pulled.json()["changes"][field.resource]] == [text]


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("field", JOURNAL_TEXT, ids=field_id)
async def test_unstorable_text_is_a_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, patient: Person, field: TextField, value: str
) -> None:
    data = valid_body(field.resource)
    field.put(data, REFUSED[value](field.limit))
    response = await client.post(
        f"/v1/{field.resource}",
        content=json_bytes(data, escaped=True),
        headers={**patient.headers, **JSON},
    )
    problem = assert_refused(response, "POST", f"/v1/{field.resource}")
    assert response.status_code == 422
    assert any(field.loc in loc for loc in error_locations(problem)), problem
    assert await list_ids(client, patient, field.resource) == set()


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("field", JOURNAL_TEXT, ids=field_id)
async def test_unstorable_text_in_an_edit_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, field: TextField, value: str
) -> None:
    entry = await create(client, patient, field.resource)
    path = f"/v1/{field.resource}/{entry['id']}"
    change: Json = {}
    field.put(change, REFUSED[value](field.limit))
    response = await client.patch(
        path,
        content=json_bytes(change, escaped=True),
        headers={**patient.headers, **JSON, "If-Match": f'"{entry["version"]}"'},
    )
    problem = assert_refused(response, "PATCH", f"/v1/{field.resource}/{{entry_id}}")
    assert response.status_code == 422
    assert any(field.loc in loc for loc in error_locations(problem)), problem
    assert (await read(client, patient, path)).json() == entry


def test_escaped_runs_send_astral_characters_as_surrogate_pairs() -> None:
    # What the "escaped" runs send for one astral character: a valid UTF-16 pair of escapes.
    assert json_bytes(KEPT["emoji"](0), escaped=True).startswith(b'"\\ud83d\\ude00')


@pytest.mark.parametrize("escaped", [False, True], ids=["utf8", "escaped"])
@pytest.mark.parametrize("value", KEPT)
async def test_a_display_name_is_stored_and_returned_exactly(
    client: httpx.AsyncClient, value: str, escaped: bool
) -> None:
    name = KEPT[value](DISPLAY_NAME_LIMIT)
    email = unique_email("unicode")
    account = {"email": email, "password": PASSWORD, "display_name": name, "role": "patient"}
    response = await client.post(
        "/v1/accounts", content=json_bytes(account, escaped=escaped), headers=JSON
    )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == name
    login = await token(client, email)
    me = await client.get("/v1/me", headers=bearer(login["access_token"]))
    assert me.json()["display_name"] == name


@pytest.mark.parametrize("escaped", [False, True], ids=["utf8", "escaped"])
@pytest.mark.parametrize("value", KEPT)
async def test_a_changed_display_name_is_stored_and_returned_exactly(
    client: httpx.AsyncClient, patient: Person, value: str, escaped: bool
) -> None:
    name = KEPT[value](DISPLAY_NAME_LIMIT)
    me = await read(client, patient, "/v1/me")
    response = await client.patch(
        "/v1/me",
        content=json_bytes({"display_name": name}, escaped=escaped),
        headers={**patient.headers, **JSON, "If-Match": me.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    assert (await read(client, patient, "/v1/me")).json()["display_name"] == name


@pytest.mark.parametrize("value", REFUSED)
async def test_an_unstorable_display_name_is_a_422_and_creates_no_account(
    client: httpx.AsyncClient, value: str
) -> None:
    email = unique_email("unicode")
    name = REFUSED[value](DISPLAY_NAME_LIMIT)
    account = {"email": email, "password": PASSWORD, "display_name": name, "role": "patient"}
    response = await client.post(
        "/v1/accounts", content=json_bytes(account, escaped=True), headers=JSON
    )
    problem = assert_refused(response, "POST", "/v1/accounts")
    assert response.status_code == 422
    assert ["body", "display_name"] in error_locations(problem), problem
    assert await email_is_free(client, email)


@pytest.mark.parametrize("value", REFUSED)
async def test_an_unstorable_display_name_change_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, value: str
) -> None:
    me = await read(client, patient, "/v1/me")
    response = await client.patch(
        "/v1/me",
        content=json_bytes({"display_name": REFUSED[value](DISPLAY_NAME_LIMIT)}, escaped=True),
        headers={**patient.headers, **JSON, "If-Match": me.headers["ETag"]},
    )
    problem = assert_refused(response, "PATCH", "/v1/me")
    assert response.status_code == 422
    assert ["body", "display_name"] in error_locations(problem), problem
    assert (await read(client, patient, "/v1/me")).json() == me.json()


# ---------------------------------------------------------------------------------------------
# Wrong content types to JSON routes: a 4xx problem, nothing stored.


def as_form(data: Json) -> dict[str, str]:
    return {key: str(value) for key, value in data.items() if not isinstance(value, list | dict)}


WRONG_TYPES = ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]


def wrong_type_request(kind: str, data: Json) -> dict[str, Any]:
    """httpx arguments sending ``data`` as ``kind`` instead of JSON."""
    if kind == "text/plain":
        return {"content": json_bytes(data, escaped=False), "headers": {"Content-Type": kind}}
    if kind == "multipart/form-data":
        return {"files": {key: (None, value) for key, value in as_form(data).items()}}
    return {"data": as_form(data)}


@pytest.mark.parametrize("kind", WRONG_TYPES)
@pytest.mark.parametrize("resource", RESOURCES)
async def test_a_create_in_the_wrong_content_type_is_a_4xx_and_stores_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, kind: str
) -> None:
    request = wrong_type_request(kind, valid_body(resource))
    headers = {**patient.headers, **request.pop("headers", {})}
    response = await client.post(f"/v1/{resource}", headers=headers, **request)
    assert_refused(response, "POST", f"/v1/{resource}")
    assert await list_ids(client, patient, resource) == set()


@pytest.mark.parametrize("kind", WRONG_TYPES)
@pytest.mark.parametrize("resource", EDITABLE)
async def test_an_edit_in_the_wrong_content_type_is_a_4xx_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, kind: str
) -> None:
    entry = await create(client, patient, resource)
    path = f"/v1/{resource}/{entry['id']}"
    request = wrong_type_request(kind, valid_body(resource))
    headers = {**patient.headers, "If-Match": f'"{entry["version"]}"', **request.pop("headers", {})}
    response = await client.patch(path, headers=headers, **request)
    assert_refused(response, "PATCH", f"/v1/{resource}/{{entry_id}}")
    assert (await read(client, patient, path)).json() == entry


@pytest.mark.parametrize("kind", WRONG_TYPES)
async def test_an_account_in_the_wrong_content_type_is_a_4xx_and_creates_nothing(
    client: httpx.AsyncClient, kind: str
) -> None:
    email = unique_email("form")
    account = {"email": email, "password": PASSWORD, "display_name": "Form", "role": "patient"}
    response = await client.post("/v1/accounts", **wrong_type_request(kind, account))
    assert_refused(response, "POST", "/v1/accounts")
    assert await email_is_free(client, email)


@pytest.mark.parametrize("kind", WRONG_TYPES)
async def test_a_grant_in_the_wrong_content_type_is_a_4xx_and_grants_nothing(
    client: httpx.AsyncClient, patient: Person, therapist: Person, kind: str
) -> None:
    grant = {"therapist_email": therapist.email, "scopes": "checkins:read"}
    request = wrong_type_request(kind, grant)
    headers = {**patient.headers, **request.pop("headers", {})}
    response = await client.post("/v1/grants", headers=headers, **request)
    assert_refused(response, "POST", "/v1/grants")
    grants = await read(client, patient, "/v1/grants")
    assert grants.json()["items"] == []


@pytest.mark.parametrize("kind", WRONG_TYPES)
async def test_a_sync_batch_in_the_wrong_content_type_is_a_4xx_and_applies_nothing(
    client: httpx.AsyncClient, patient: Person, kind: str
) -> None:
    batch = {"operations": [{"op": "create", "resource": "checkins", "data": {"mood": 5}}]}
    request = wrong_type_request(kind, batch)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    headers = {**patient.headers, **key, **request.pop("headers", {})}
    response = await client.post("/v1/sync", headers=headers, **request)
    assert_refused(response, "POST", "/v1/sync")
    assert await list_ids(client, patient, "checkins") == set()


@pytest.mark.parametrize("kind", WRONG_TYPES)
async def test_a_profile_change_in_the_wrong_content_type_is_a_4xx_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, kind: str
) -> None:
    me = await read(client, patient, "/v1/me")
    request = wrong_type_request(kind, {"display_name": "Changed"})
    headers = {**patient.headers, "If-Match": me.headers["ETag"], **request.pop("headers", {})}
    response = await client.patch("/v1/me", headers=headers, **request)
    assert_refused(response, "PATCH", "/v1/me")
    assert (await read(client, patient, "/v1/me")).json() == me.json()


@pytest.mark.parametrize("kind", ["application/json", "text/plain"])
async def test_a_token_request_that_is_not_a_form_issues_no_token(
    client: httpx.AsyncClient, patient: Person, kind: str
) -> None:
    credentials = {"grant_type": "password", "username": patient.email, "password": PASSWORD}
    response = await client.post(
        "/v1/auth/token",
        content=json_bytes(credentials, escaped=False),
        headers={"Content-Type": kind},
    )
    assert_refused(response, "POST", "/v1/auth/token")
    assert "access_token" not in response.text


# ---------------------------------------------------------------------------------------------
# Times at the ends of the calendar: in UTC they fall outside what a datetime can hold.

OUT_OF_RANGE = {
    "year_1_east_of_utc": "0001-01-01T00:00:00+01:00",
    "year_9999_west_of_utc": "9999-12-31T23:59:59-01:00",
}
TIME_FIELDS = {
    "sessions": "started_at",
    "intentions": "set_at",
    "reflections": "written_at",
    "checkins": "recorded_at",
    "assessments": "completed_at",
}


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("resource", RESOURCES)
async def test_an_out_of_range_time_in_a_body_is_a_422(
    client: httpx.AsyncClient, patient: Person, resource: str, when: str
) -> None:
    data = valid_body(resource, **{TIME_FIELDS[resource]: OUT_OF_RANGE[when]})
    response = await client.post(f"/v1/{resource}", json=data, headers=patient.headers)
    assert_refused(response, "POST", f"/v1/{resource}")
    assert response.status_code == 422
    assert await list_ids(client, patient, resource) == set()


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("resource", EDITABLE)
async def test_an_out_of_range_time_in_an_edit_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, when: str
) -> None:
    entry = await create(client, patient, resource)
    path = f"/v1/{resource}/{entry['id']}"
    response = await client.patch(
        path,
        json={TIME_FIELDS[resource]: OUT_OF_RANGE[when]},
        headers={**patient.headers, "If-Match": f'"{entry["version"]}"'},
    )
    assert_refused(response, "PATCH", f"/v1/{resource}/{{entry_id}}")
    assert response.status_code == 422
    assert (await read(client, patient, path)).json() == entry


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("resource", RESOURCES)
async def test_an_out_of_range_time_in_a_sync_batch_is_rejected_and_applies_nothing(
    client: httpx.AsyncClient, patient: Person, resource: str, when: str
) -> None:
    data = valid_body(resource, **{TIME_FIELDS[resource]: OUT_OF_RANGE[when]})
    operations = [{"op": "create", "resource": resource, "data": data}]
    headers = {**patient.headers, "Idempotency-Key": str(uuid.uuid4())}
    # Each operation on its own: this one rejected with a 422 problem of its own.
    response = await client.post("/v1/sync", json={"operations": operations}, headers=headers)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["outcome"], result["status"]) == ("rejected", 422)
    assert result["problem"]["errors"][0]["loc"][:4] == ["body", "operations", 0, "data"]
    # All or nothing: the batch itself is refused.
    atomic = {"operations": operations, "atomic": True}
    response = await client.post(
        "/v1/sync", json=atomic, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert_refused(response, "POST", "/v1/sync")
    assert await list_ids(client, patient, resource) == set()


@pytest.mark.parametrize("when", OUT_OF_RANGE)
async def test_an_out_of_range_grant_expiry_is_a_422(
    client: httpx.AsyncClient, patient: Person, therapist: Person, when: str
) -> None:
    grant = {
        "therapist_email": therapist.email,
        "scopes": ["checkins:read"],
        "expires_at": OUT_OF_RANGE[when],
    }
    response = await client.post("/v1/grants", json=grant, headers=patient.headers)
    assert_refused(response, "POST", "/v1/grants")
    assert response.status_code == 422


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("bound", ["since", "until"])
@pytest.mark.parametrize(("method", "template"), operations_with_query("since"))
async def test_an_out_of_range_time_in_a_query_is_a_4xx(
    client: httpx.AsyncClient,
    patient: Person,
    read_token: str,
    method: str,
    template: str,
    bound: str,
    when: str,
) -> None:
    headers = (
        bearer(read_token)
        if security_scheme(method, template) == "patient_read"
        else patient.headers
    )
    path = template.replace("{patient_id}", patient.id)
    response = await client.get(path, params={bound: OUT_OF_RANGE[when]}, headers=headers)
    assert_refused(response, method, template)


EARLIEST = "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("resource", RESOURCES)
async def test_an_entry_at_the_earliest_time_breaks_no_read(
    client: httpx.AsyncClient, patient: Person, read_token: str, resource: str
) -> None:
    """The earliest time a datetime holds is a valid past time; whether it is kept or refused,
    every read of the journal still answers afterwards."""
    data = valid_body(resource, **{TIME_FIELDS[resource]: EARLIEST})
    created = await client.post(f"/v1/{resource}", json=data, headers=patient.headers)
    if created.status_code != 201:
        assert_refused(created, "POST", f"/v1/{resource}")
    reads = {
        "/v1/me/summary?days=365": patient.headers,
        f"/v1/{resource}?limit=200": patient.headers,
        "/v1/sync?cursor=0": patient.headers,
        f"/v1/patients/{patient.id}/summary?days=365": bearer(read_token),
        f"/v1/patients/{patient.id}/{resource}?limit=200": bearer(read_token),
    }
    answers = {path: (await client.get(path, headers=headers)) for path, headers in reads.items()}
    broken = {path: r.status_code for path, r in answers.items() if r.status_code != 200}
    assert not broken, broken
