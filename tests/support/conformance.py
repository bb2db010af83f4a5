"""Every answer the suite gets is checked against the committed spec, so the two cannot drift.

``check_response`` finds the operation a request was for (by method and path template, HEAD as
its GET) and fails when the answer's status is not declared for it, when its body is not of a
declared media type or does not validate against the declared schema (JSON Schema 2020-12, as
OpenAPI 3.1 has it), or when its headers break the declaration: a header of the service's own
(``api.headers.HEADERS``) sent but not declared for that answer, a required one missing, or a
value outside its schema. Paths the spec does not describe (the web view, /docs, an unknown
path) are not checked here; neither is a method the path does not have (405).

The clients of the suite (``tests/conftest.py``'s ``client`` and ``conforming_client``) run it
as an httpx response hook, so a test fails at the request that broke the contract.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.errors import Problem
from api.headers import HEADERS
from api.openapi import answer_schemas

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
SPEC_URI = "urn:kap-journal:openapi"
OWN_HEADERS = {name.lower(): name for name in HEADERS}
JSON_TYPES = ("application/json", "application/problem+json", "application/fhir+json")
Json = Any


def _problem_models(model: type[Problem]) -> set[str]:
    return {model.__name__}.union(*(_problem_models(sub) for sub in model.__subclasses__()))


PROBLEM_SCHEMAS = _problem_models(Problem)
REPORT = os.environ.get("CONFORMANCE_REPORT", "")


class Contract:
    """The committed spec, ready to check answers against."""

    def __init__(self, spec: Json) -> None:
        self.spec = spec
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
        )
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in spec["paths"]
        ]
        self.validators: dict[str, Draft202012Validator] = {}

    def operation(self, method: str, path: str) -> tuple[str, Json] | None:
        """The path template and operation a request was for, or None outside the spec."""
        method = "get" if method == "head" else method
        for pattern, template in self.templates:
            if pattern.match(path):
                operation = self.spec["paths"][template].get(method)
                return (template, operation) if operation is not None else None
        return None

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at this JSON pointer of the spec (refs resolve in it)."""
        if pointer not in self.validators:
            self.validators[pointer] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"},
                registry=self.registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
        return self.validators[pointer]

    def header(self, declared: Json) -> Json:
        if "$ref" in declared:
            return self.spec["components"]["headers"][declared["$ref"].rsplit("/", 1)[-1]]
        return declared


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _closed(spec: Json) -> Json:
    """The spec with every answer's object schemas closed (``additionalProperties: false``
    where it says nothing): a member the server sends that the spec does not name is drift
    too. Schemas read from requests stay as they are, and so do the problem schemas: RFC 9457
    (3.2) lets a problem carry extension members, which clients must ignore (the sync's
    `operation`, for one, is described in words)."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for name in answer_schemas(spec) - PROBLEM_SCHEMAS:
        if "properties" in schemas[name]:
            schemas[name].setdefault("additionalProperties", False)
    return spec


@functools.cache
def contract() -> Contract:
    return Contract(_closed(json.loads(SPEC_PATH.read_text())))


def check_response(response: httpx.Response) -> list[str]:
    """What in this answer breaks the committed spec (empty when it conforms)."""
    request = response.request
    method = request.method.lower()
    spec = contract()
    found = spec.operation(method, request.url.path)
    if found is None:
        return []
    template, operation = found
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    status = str(response.status_code)
    declared = operation["responses"].get(status)
    if declared is None:
        return [f"{where}: status {status} is not declared for {method} {template}"]
    verb = "get" if method == "head" else method
    pointer = f"/paths/{_escape(template)}/{verb}/responses/{status}"
    problems = _check_headers(spec, declared, response, where)
    problems += _check_body(spec, declared, pointer, response, where, head=method == "head")
    return problems


def _check_headers(
    spec: Contract, declared: Json, response: httpx.Response, where: str
) -> list[str]:
    problems: list[str] = []
    headers = {
        name.lower(): (name, spec.header(value))
        for name, value in declared.get("headers", {}).items()
    }
    for name in response.headers:
        if name in OWN_HEADERS and name not in headers:
            problems.append(f"{where}: sends {OWN_HEADERS[name]} but does not declare it")
    for lowered, (name, header) in headers.items():
        value = response.headers.get(lowered)
        if value is None:
            if header.get("required"):
                problems.append(f"{where}: declares {name} required but did not send it")
            continue
        schema = header.get("schema", {})
        instance: Any = value
        if schema.get("type") == "integer":
            try:
                instance = int(value)
            except ValueError:
                problems.append(f"{where}: {name}: {value!r} is not an integer")
                continue
        errors = list(Draft202012Validator(schema).iter_errors(instance))
        if errors:
            problems.append(f"{where}: {name}: {value!r}: {errors[0].message}")
    return problems


def _check_body(
    spec: Contract,
    declared: Json,
    pointer: str,
    response: httpx.Response,
    where: str,
    *,
    head: bool,
) -> list[str]:
    content = declared.get("content", {})
    if head or response.status_code == 204:
        return [f"{where}: a body on an answer that has none"] if response.content else []
    media_type = response.headers.get("content-type", "").partition(";")[0].strip()
    if not content:
        return [f"{where}: an undeclared body ({media_type})"] if response.content else []
    if media_type not in content:
        return [f"{where}: media type {media_type!r} is not declared (only {sorted(content)})"]
    if media_type not in JSON_TYPES or "schema" not in content[media_type]:
        return []
    try:
        body = response.json()
    except ValueError:
        return [f"{where}: the {media_type} body is not JSON"]
    validator = spec.validator(f"{pointer}/content/{_escape(media_type)}/schema")
    return [
        f"{where}: body at {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in list(validator.iter_errors(body))[:5]
    ]


async def _conform(response: httpx.Response) -> None:
    await response.aread()
    problems = check_response(response)
    if problems and REPORT:
        # CONFORMANCE_REPORT=<file>: a survey of every break in one run, instead of the first.
        with Path(REPORT).open("a") as report:  # noqa: ASYNC230 (a test survey, not a server)
            report.write("".join(f"{problem}\n" for problem in problems))
        return
    if problems:
        raise AssertionError("the answer breaks the committed spec:\n  " + "\n  ".join(problems))


def conforming_client(app: FastAPI | None = None, **options: Any) -> httpx.AsyncClient:
    """An httpx client whose every answer is checked against the spec: for the app in process,
    or with the options given (a ``transport``, or a real server's ``base_url``)."""
    options.setdefault("base_url", "http://testserver")
    hooks = options.pop("event_hooks", {})
    hooks.setdefault("response", []).append(_conform)
    if app is not None:
        options.setdefault("transport", httpx.ASGITransport(app=app))
    return httpx.AsyncClient(event_hooks=hooks, **options)
