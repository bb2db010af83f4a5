"""The committed spec is the app's spec, valid, and honest about errors and security."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_committed_spec_matches_the_app(app: FastAPI, committed: dict[str, Any]) -> None:
    assert app.openapi() == committed, (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_committed_spec_is_valid_openapi(committed: dict[str, Any]) -> None:
    validate(committed)


def test_operation_ids_are_unique_and_every_operation_is_described(
    committed: dict[str, Any],
) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(committed)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(committed):
        assert operation.get("description"), f"{method} {path} has no docstring"
        assert operation.get("tags"), f"{method} {path} has no tag"


def test_every_error_response_is_problem_json(committed: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(committed):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], (
                    method,
                    path,
                    status,
                )
                checked += 1
    assert checked > 10


def test_protected_operations_declare_the_security_scheme_and_401(
    committed: dict[str, Any],
) -> None:
    assert committed["components"]["securitySchemes"]["login"]["flows"]["password"]["tokenUrl"] == (
        "/v1/auth/token"
    )
    protected = [op for _, _, op in operations(committed) if op.get("security")]
    assert protected
    for operation in protected:
        assert "401" in operation["responses"], operation["operationId"]


def test_no_dangling_schema_references(committed: dict[str, Any]) -> None:
    text = json.dumps(committed)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(committed["components"]["schemas"]), refs - set(
        committed["components"]["schemas"]
    )


def test_every_problem_example_names_the_kind_of_its_status(committed: dict[str, Any]) -> None:
    """Slug and title come from the error catalogue (api.errors.PROBLEM_KINDS): an example of a
    408 says request-timeout, not the internal error a status missing from a hand-kept list
    would fall back to."""
    from api.errors import PROBLEM_KINDS

    checked = 0
    for path, method, operation in operations(committed):
        for status, response in operation["responses"].items():
            example = response.get("content", {}).get("application/problem+json", {}).get("example")
            if example is None or example["type"] == "/problems/oauth-error":
                continue
            kind = PROBLEM_KINDS[int(status)]
            assert (example["type"], example["title"], example["status"]) == (
                f"/problems/{kind.slug}",
                kind.title,
                int(status),
            ), (method, path, status)
            checked += 1
    assert checked > 300
