"""The OpenAPI document as integrators get it: errors declared as problem+json, with examples."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.auth.schemas import PasswordGrant, RefreshTokenGrant
from api.errors import PROBLEM_KINDS, PROBLEM_MEDIA_TYPE, ProblemError
from api.headers import (
    ALLOW_ORIGIN,
    HEADERS,
    RATE_LIMIT,
    REPLAYED,
    REQUEST_ID,
    RETRY_AFTER,
    WWW_AUTHENTICATE,
    header_refs,
)
from api.preconditions import IF_MATCH
from api.ratelimit import NO_REQUEST_BUDGET, UNLIMITED_PATHS

TOO_MANY = "Too many requests: wait `Retry-After` seconds. `RateLimit-*` headers show the budget."
UNAVAILABLE = "The database is unreachable or busy: retry after `Retry-After` seconds."
BAD_BODY = "The body could not be parsed (not UTF-8, or nested too deeply)."
WRONG_MEDIA_TYPE = "The body's `Content-Type` is not one this operation reads (see `requestBody`)."
NO_DATABASE = {"/healthz", "/.well-known/jwks.json"}

OAUTH_PROBLEM_EXAMPLE = {
    "type": "/problems/oauth-error",
    "title": "Bad Request",
    "status": 400,
    "detail": "The email or password is incorrect.",
    "error": "invalid_grant",
    "error_description": "The email or password is incorrect.",
}
# Examples for the schemas that have no schemas.py to hold them: FastAPI builds the Body_* ones
# from the Form() parameters of the token routes; the others are declared in their endpoints.
COMPONENT_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "Body_issue_token": [
        {
            "grant_type": "password",
            "username": "ada@example.org",
            "password": "correct horse battery",
        },
        {
            "grant_type": "refresh_token",
            "refresh_token": "rt_4356LhI65Eq5xtwFdA4PmgpJWFBXZVie2cRYPw7_2bU",
        },
    ],
    "Body_revoke_token": [{"token": "rt_4356LhI65Eq5xtwFdA4PmgpJWFBXZVie2cRYPw7_2bU"}],
    "Body_mint_read_token": [{"scope": "checkins:read summary:read"}],
    "SharedPatients": [
        {
            "items": [
                {
                    "patient_id": "6b8ad972-9329-4a1d-b265-4288ababcca0",
                    "display_name": "Ada",
                    "grant_id": "04100423-b6a0-410e-9b72-b7394471b0cb",
                    "scopes": ["checkins:read", "summary:read"],
                    "expires_at": "2027-02-19T09:12:44.913000+00:00",
                    "open_safety_flags": 0,
                }
            ]
        }
    ],
    "Health": [{"status": "ok"}],
}
_PATIENT = "urn:uuid:6b8ad972-9329-4a1d-b265-4288ababcca0"
MEDIA_TYPE_EXAMPLES: dict[str, dict[str, Any]] = {
    "application/fhir+json": {
        "resourceType": "Bundle",
        "id": "0202aa66-f93f-4591-8c01-3e4ea3ef1312",
        "type": "collection",
        "timestamp": "2026-11-21T10:00:00+00:00",
        "entry": [
            {
                "fullUrl": _PATIENT,
                "resource": {
                    "resourceType": "Patient",
                    "id": "6b8ad972-9329-4a1d-b265-4288ababcca0",
                    "name": [{"text": "Ada"}],
                    "telecom": [{"system": "email", "value": "ada@example.org"}],
                },
            },
            {
                "fullUrl": "urn:uuid:3e6f4ecb-2e3a-4010-a603-ae8aa65360fe",
                "resource": {
                    "resourceType": "Observation",
                    "id": "3e6f4ecb-2e3a-4010-a603-ae8aa65360fe",
                    "meta": {
                        "security": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                "code": "R",
                                "display": "restricted",
                            }
                        ]
                    },
                    "status": "final",
                    "code": {
                        "coding": [
                            {
                                "system": "https://kap-journal.org/fhir/CodeSystem/journal",
                                "code": "mood-check-in",
                                "display": "Mood check-in",
                            }
                        ],
                        "text": "Mood check-in",
                    },
                    "subject": {"reference": _PATIENT},
                    "effectiveDateTime": "2026-11-21T07:30:00+00:00",
                    "component": [
                        {
                            "code": {
                                "coding": [
                                    {
                                        "system": "https://kap-journal.org/fhir/CodeSystem/journal",
                                        "code": "mood",
                                        "display": "Mood (0-10)",
                                    }
                                ],
                                "text": "Mood (0-10)",
                            },
                            "valueQuantity": {
                                "value": 6,
                                "unit": "score",
                                "system": "http://unitsofmeasure.org",
                                "code": "{score}",
                            },
                        }
                    ],
                },
            },
        ],
    }
}


def _model_examples() -> dict[str, list[Any]]:
    """The examples of this service's models, by schema title, as pydantic writes them.

    FastAPI encodes the document with ``exclude_none``, which also drops every null inside an
    example; a nullable field's example is often null, so the examples are put back from here.
    """
    found: dict[str, list[Any]] = {}
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("api.") and "json_schema_extra" in model.model_config:
            schema = model.model_json_schema()
            if "examples" in schema:
                found[schema["title"]] = schema["examples"]
    return found


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _validation_issue(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """One plausible entry of `errors` for this operation: a missing body field, else a bad
    parameter."""
    body = operation.get("requestBody", {}).get("content", {})
    for media in body.values():
        ref = media.get("schema", {}).get("$ref", "")
        required = schemas.get(ref.rsplit("/", 1)[-1], {}).get("required", [])
        if required:
            return {"loc": ["body", required[0]], "msg": "Field required", "type": "missing"}
    for parameter in operation.get("parameters", []):
        where, name, schema = parameter["in"], parameter["name"], parameter.get("schema", {})
        if schema.get("format") == "uuid":
            return {
                "loc": [where, name],
                "msg": "Input should be a valid UUID",
                "type": "uuid_parsing",
            }
        if schema.get("type") == "integer":
            return {
                "loc": [where, name],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
    return {"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}


def _problem_example(
    status: int, response: dict[str, Any], operation: dict[str, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    ref = response["content"][PROBLEM_MEDIA_TYPE].get("schema", {}).get("$ref", "")
    if ref.endswith("/OAuthProblem"):
        kind = PROBLEM_KINDS[status]
        if status == OAUTH_PROBLEM_EXAMPLE["status"]:
            return OAUTH_PROBLEM_EXAMPLE
        return {
            **OAUTH_PROBLEM_EXAMPLE,
            "title": kind.title,
            "status": status,
            "detail": response["description"],
            "error": "invalid_request",
            "error_description": response["description"],
        }
    kind = PROBLEM_KINDS.get(status, ProblemError)
    example: dict[str, Any] = {
        "type": f"/problems/{kind.slug}",
        "title": kind.title,
        "status": status,
        "detail": response["description"],
    }
    if ref.endswith("/ValidationProblem"):
        example["detail"] = "The request is not valid: see errors."
        example["errors"] = [_validation_issue(operation, schemas)]
    # Members of the route's own problem (a 412's ``current``) come from its declaration.
    return {**example, **response["content"][PROBLEM_MEDIA_TYPE].get("example", {})}


def _declare_headers(path: str, operation: dict[str, Any]) -> None:
    """The headers the middlewares send, on the answers they send them with.

    Every answer has its request id (``api.middleware.Envelope``), and the CORS origin when
    configured; the rate limiter reports the caller's budget on every answer of the paths it
    limits, and with every 429; 429 and 503 say when to retry; a 401 carries the bearer
    challenge. An operation taking an ``Idempotency-Key`` marks a replayed answer.
    """
    limited = not path.startswith(NO_REQUEST_BUDGET)
    reads_for_a_therapist = any(READ_SCHEME in scheme for scheme in operation.get("security", []))
    idempotent = any(
        p["name"].lower() == "idempotency-key" for p in operation.get("parameters", [])
    )
    for status, response in operation["responses"].items():
        headers = response.setdefault("headers", {})
        headers.update(header_refs(REQUEST_ID, ALLOW_ORIGIN))
        if status in ("429", "503"):
            headers.update(header_refs(RETRY_AFTER))
        if limited or status == "429":
            headers.update(header_refs(*RATE_LIMIT))
        if status == "401":
            headers.update(header_refs(WWW_AUTHENTICATE))
        if status == "403" and reads_for_a_therapist:
            # A read token without the scope the route needs: `error="insufficient_scope"`.
            challenge = {k: v for k, v in HEADERS[WWW_AUTHENTICATE].items() if k != "required"}
            headers[WWW_AUTHENTICATE] = challenge
        if idempotent and status.startswith("2"):
            headers.update(header_refs(REPLAYED))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` as ``X``, for what HTTP can only leave out (a parameter, a form field)."""
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    (kept,) = [option for option in options if option != {"type": "null"}]
    return {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **kept}


def _tidy_parameters(operation: dict[str, Any]) -> None:
    """Parameters as HTTP has them: an optional one is left out, never null; `If-Match` is
    required (the server answers 428 without it, so it is not declared required in the route,
    where FastAPI would answer 422 first)."""
    for parameter in operation.get("parameters", []):
        parameter["schema"] = _without_null(parameter.get("schema", {}))
        if parameter["in"] == "header" and parameter["name"].lower() == IF_MATCH:
            parameter["required"] = True


def _referenced(node: Any, found: set[str]) -> set[str]:
    """The component schemas a part of the document names, directly or through others."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _referenced(value, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, found)
    return found


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    pending, seen = list(names), set[str]()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_referenced(schemas[name], set()) - seen)
    return seen


def answer_schemas(spec: dict[str, Any]) -> set[str]:
    """The component schemas only answers use (none that a request body or parameter names)."""
    schemas = spec["components"]["schemas"]
    requests, answers = set[str](), set[str]()
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            _referenced(operation.get("requestBody", {}), requests)
            _referenced(operation.get("parameters", []), requests)
            _referenced(operation["responses"], answers)
    return _closure(answers, schemas) - _closure(requests, schemas)


def _answers_are_whole(spec: dict[str, Any]) -> None:
    """Every member of an answer's schema is required: answers are serialised whole
    (``model_dump_json`` with nothing excluded), so a member with a default is still always
    sent, as null when it has no value. pydantic leaves such members out of ``required`` in
    its serialisation schemas, which generated clients then type as maybe missing. Schemas that
    are also read from requests keep pydantic's own ``required``."""
    schemas = spec["components"]["schemas"]
    for name in answer_schemas(spec):
        properties = schemas[name].get("properties")
        if properties:
            schemas[name]["required"] = list(properties)


READ_SCHEME = "patient_read"  # the security scheme of a patient-scoped read token (api.patients)
TOKEN_FORMS = (PasswordGrant, RefreshTokenGrant)


def _token_request(schemas: dict[str, Any]) -> None:
    """The token request as one form per grant, told apart by `grant_type`, so that a client
    generated from the spec cannot send a password grant without a password."""
    mapping = {}
    for form in TOKEN_FORMS:
        schema = form.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, member in schema["properties"].items():
            schema["properties"][name] = _without_null(member)  # a form field is never null
        schemas[form.__name__] = schema
        mapping[schema["properties"]["grant_type"]["const"]] = (
            f"#/components/schemas/{form.__name__}"
        )
    for name, schema in schemas.items():
        if name.startswith("Body_"):  # FastAPI's schemas of the form bodies
            for field, member in schema.get("properties", {}).items():
                schema["properties"][field] = _without_null(member)
    schemas["Body_issue_token"] = {
        "title": "Body_issue_token",
        "description": "Form-encoded (RFC 6749): a password grant or a refresh_token grant.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "grant_type", "mapping": mapping},
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas = spec.get("components", {}).get("schemas", {})
    for path, path_item in spec.get("paths", {}).items():
        for operation in path_item.values():
            if not path.startswith(UNLIMITED_PATHS):
                # The rate-limit middleware can answer any of these (see api.ratelimit).
                operation["responses"].setdefault("429", _problem(TOO_MANY))
            if "requestBody" in operation:
                # Bodies that are not JSON at all (not UTF-8, nested past the parser) are a 400.
                operation["responses"].setdefault("400", _problem(BAD_BODY))
                # A body of another media type than the operation reads (api.routing.ApiRoute).
                operation["responses"].setdefault("415", _problem(WRONG_MEDIA_TYPE))
            if path not in NO_DATABASE:
                operation["responses"].setdefault("503", _problem(UNAVAILABLE))
            if operation.get("operationId") == "issue_token":
                # Without a body there is no grant_type: 400 invalid_request.
                operation["requestBody"]["required"] = True
            _declare_headers(path, operation)
            _tidy_parameters(operation)
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
                    content[PROBLEM_MEDIA_TYPE]["example"] = _problem_example(
                        int(status), response, operation, schemas
                    )
                for media_type, media in content.items():
                    if media_type in MEDIA_TYPE_EXAMPLES:
                        media.setdefault("example", MEDIA_TYPE_EXAMPLES[media_type])
    spec["components"]["headers"] = HEADERS
    _token_request(schemas)
    _answers_are_whole(spec)
    # FastAPI's own validation schemas are replaced by ValidationProblem on every route.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    model_examples = _model_examples()
    for name, schema in schemas.items():
        if schema.get("title") in model_examples:
            schema["examples"] = model_examples[schema["title"]]
        if name in COMPONENT_EXAMPLES:
            schema["examples"] = COMPONENT_EXAMPLES[name]
    app.openapi_schema = spec
    return spec
