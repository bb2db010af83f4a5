from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.database import HEALTH_TIMEOUT_SECONDS
from api.errors import ServiceUnavailable, problems
from api.routing import api_router

router = api_router(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="`ok`; from /readyz also `degraded`: serving, with the shared rate-limit "
        "store (Redis) unreachable, so limits are not enforced."
    )


@router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the process is up and serving. Touches nothing else."""
    return Health(status="ok")


@router.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> Health:
    """Readiness, for load balancers: 503 problem with `Retry-After` only when the database is unreachable (on a connection of its own, never queued behind requests, answered within 2 seconds) or the node is draining after SIGTERM; `degraded` when the rate-limit store is unreachable."""
    if request.app.state.draining:
        raise ServiceUnavailable(
            "This node is shutting down: send requests to another node.",
            headers={"Retry-After": "5"},
            cause="draining",
        )
    engine: AsyncEngine = request.app.state.health_engine
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready", never a 500
        raise ServiceUnavailable(
            "The database is not reachable.",
            headers={"Retry-After": "5"},
            cause="database-unreachable",
        ) from None
    return Health(status="degraded" if request.app.state.limiter.degraded else "ok")
