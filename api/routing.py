"""How every router of the service is made, so that its routes are named alike everywhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute


def operation_id(route: APIRoute) -> str:
    # Route function names are unique and stable: they are the operation ids integrators see.
    return route.name


def api_router(**options: Any) -> APIRouter:
    """An ``APIRouter`` whose routes take their route name as operation id (and as the name of
    a form body's schema). ``create_app`` adds these routes to the app's own router."""
    return APIRouter(generate_unique_id_function=operation_id, **options)
