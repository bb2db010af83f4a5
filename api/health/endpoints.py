from __future__ import annotations

import asyncio

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import ServiceUnavailable, problems
from api.routing import api_router

router = api_router(tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the process is up and serving. Touches nothing else."""
    return Health(status="ok")


@router.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> Health:
    """Readiness: the database answers within 2 seconds; 503 problem with `Retry-After` when it does not."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready", never a 500
        raise ServiceUnavailable(
            "The database is not reachable.", headers={"Retry-After": "5"}
        ) from None
    return Health(status="ok")
