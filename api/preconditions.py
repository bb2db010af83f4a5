"""ETag and If-Match: every editable resource carries a version; edits must name the one they saw."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from api.errors import PreconditionFailed, PreconditionRequired

IF_MATCH = "if-match"
# Optional to FastAPI, so that a request without it is our 428 and not a 422; the spec declares
# it required (api.openapi).
IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The ETag from your last read. Required: 428 without it, 412 when stale.",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def require_match(if_match: str | None, current_version: int) -> None:
    """Raise 428 without If-Match and 412 when it names no current version (RFC 9110 13.1.1)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "Send If-Match with the ETag from your last read of this resource."
        )
    candidates = [tag.strip() for tag in if_match.split(",")]
    if "*" in candidates:
        return
    # Strong comparison: our tags are strong, so a weak W/"n" never matches.
    if etag(current_version) not in candidates:
        raise PreconditionFailed(
            "The resource has changed since you read it: read it again and retry."
        )
