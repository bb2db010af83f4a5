"""The response headers this service sends, described once for the OpenAPI document.

Each is a ``components/headers`` entry of the spec (``api.openapi``); ``required`` where the
header is always sent with every answer that declares it. A route declares the ones
it sends itself with ``sends(status, ...)`` beside its ``problems(...)``; the ones a middleware
sends on every answer (request id, rate-limit budget, ``Retry-After``, the bearer challenge) are
declared by ``api.openapi`` where that middleware applies. The suite checks every answer against
these declarations (``tests/support/conformance.py``).
"""

from __future__ import annotations

from typing import Any

ETAG = "ETag"
LOCATION = "Location"
REPLAYED = "Idempotent-Replayed"
CONTENT_DISPOSITION = "Content-Disposition"
REQUEST_ID = "X-Request-ID"
RETRY_AFTER = "Retry-After"
WWW_AUTHENTICATE = "WWW-Authenticate"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"
RATE_LIMIT = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

_SECONDS = {"type": "integer", "minimum": 0}

HEADERS: dict[str, dict[str, Any]] = {
    ETAG: {
        "required": True,
        "description": "The entry's current version as a strong tag; send it back as `If-Match`.",
        "schema": {"type": "string", "pattern": '^"[0-9]+"$', "maxLength": 22},
        "example": '"3"',
    },
    LOCATION: {
        "required": True,
        "description": "Where the created resource can be read.",
        "schema": {"type": "string", "format": "uri-reference", "maxLength": 200},
        "example": "/v1/checkins/3e6f4ecb-2e3a-4010-a603-ae8aa65360fe",
    },
    REPLAYED: {
        "description": "`true` when this is the stored answer to an earlier request with the same "
        "`Idempotency-Key` (nothing was written now); absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    CONTENT_DISPOSITION: {
        "required": True,
        "description": "An attachment, with a file name for the download.",
        "schema": {"type": "string", "maxLength": 200},
        "example": 'attachment; filename="journal-20261121.json"',
    },
    REQUEST_ID: {
        "required": True,
        "description": "The request's id: the caller's own `X-Request-ID` when it was a plain "
        "token (letters, digits, `-`, `_`, `.`, up to 64 characters), else a new one (32 hex "
        "digits). Quote it when reporting a problem; it names the request in the service's logs.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    },
    RETRY_AFTER: {
        "required": True,
        "description": "Seconds to wait before retrying (RFC 9110, 10.2.3).",
        "schema": _SECONDS,
        "example": 1,
    },
    WWW_AUTHENTICATE: {
        "required": True,
        "description": "The bearer challenge (RFC 6750, 3): `Bearer`, with `error` "
        "(`invalid_token`, `insufficient_scope`) when the request carried a token.",
        "schema": {"type": "string", "maxLength": 200},
        "example": 'Bearer error="invalid_token"',
    },
    ALLOW_ORIGIN: {
        "description": "Only when the service is configured to answer browsers of other origins "
        "(`JOURNAL_CORS_ORIGINS`) and the request's `Origin` is one of them: that origin.",
        "schema": {"type": "string", "format": "uri", "maxLength": 200},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed in the current window for this caller's budget.",
        "schema": _SECONDS,
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": _SECONDS,
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window frees a request again.",
        "schema": _SECONDS,
    },
}


def header_refs(*names: str) -> dict[str, dict[str, Any]]:
    """The ``headers`` member of a response: each name by reference to ``components/headers``
    (where a header always sent with the answers that declare it is ``required``)."""
    for name in names:
        assert name in HEADERS, f"{name} is not described in api.headers.HEADERS"
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def sends(status: int, *names: str) -> dict[int | str, Any]:
    """The ``responses=`` entry of a route's own answer: the headers it sends with ``status``."""
    return {status: {"headers": header_refs(*names)}}
