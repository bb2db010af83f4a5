"""How every router of the service is made, so that its routes are named alike everywhere."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from api.errors import ProblemError, UnsupportedMediaType

FORM_MEDIA_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def operation_id(route: APIRoute) -> str:
    # Route function names are unique and stable: they are the operation ids integrators see.
    return route.name


def _reads(route: APIRoute, media_type: str) -> bool:
    """Whether the route's body parser reads a body of this media type."""
    declared = getattr(route.body_field.field_info, "media_type", "") if route.body_field else ""
    if declared in FORM_MEDIA_TYPES:
        return media_type in FORM_MEDIA_TYPES
    # JSON, as FastAPI parses it: application/json and any application/*+json.
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _has_body(request: Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


class ApiRoute(APIRoute):
    """A route of the API: a body of a media type the route does not read is a 415 problem.

    FastAPI would otherwise hand such a body on as bytes and answer a puzzling 422 (or, for a
    form, read nothing and complain of missing fields). A body without `Content-Type` is refused
    too: FastAPI does not guess that it is JSON, and RFC 9110 (8.3) lets a recipient take it for
    `application/octet-stream`, which no operation reads.
    """

    def unsupported_media_type(self, detail: str) -> ProblemError:
        return UnsupportedMediaType(detail)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        expected = (
            "application/x-www-form-urlencoded"
            if getattr(self.body_field.field_info, "media_type", "") in FORM_MEDIA_TYPES
            else "application/json"
        )

        async def checked_handler(request: Request) -> Response:
            if _has_body(request):
                content_type = request.headers.get("content-type", "")
                media_type = content_type.partition(";")[0].strip().lower()
                if not _reads(self, media_type):
                    raise self.unsupported_media_type(
                        f"This operation reads {expected}, not "
                        f"{media_type or 'a body without Content-Type'}."
                    )
            return await handler(request)

        return checked_handler


def api_router(**options: Any) -> APIRouter:
    """An ``APIRouter`` whose routes take their route name as operation id (and as the name of
    a form body's schema) and refuse bodies of a media type they do not read (``ApiRoute``).
    ``create_app`` adds these routes to the app's own router."""
    options.setdefault("route_class", ApiRoute)
    return APIRouter(generate_unique_id_function=operation_id, **options)
