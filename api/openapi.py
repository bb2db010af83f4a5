"""The OpenAPI document as integrators get it: errors declared as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_MEDIA_TYPE
from api.ratelimit import UNLIMITED_PATHS

TOO_MANY = "Too many requests: wait `Retry-After` seconds. `RateLimit-*` headers show the budget."
UNAVAILABLE = "The database is unreachable or busy: retry after `Retry-After` seconds."
BAD_BODY = "The body could not be parsed (not UTF-8, or nested too deeply)."
NO_DATABASE = {"/healthz", "/.well-known/jwks.json"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
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
    for path, path_item in spec.get("paths", {}).items():
        for operation in path_item.values():
            if not path.startswith(UNLIMITED_PATHS):
                # The rate-limit middleware can answer any of these (see api.ratelimit).
                operation["responses"].setdefault("429", _problem(TOO_MANY))
            if "requestBody" in operation:
                # Bodies that are not JSON at all (not UTF-8, nested past the parser) are a 400.
                operation["responses"].setdefault("400", _problem(BAD_BODY))
            if path not in NO_DATABASE:
                operation["responses"].setdefault("503", _problem(UNAVAILABLE))
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    # FastAPI's own validation schemas are replaced by ValidationProblem on every route.
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = spec
    return spec
