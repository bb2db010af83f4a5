"""Assembles the application: ``create_app()`` is the one place the pieces meet."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import __version__
from api.accounts.endpoints import router as accounts_router
from api.audit.endpoints import router as audit_router
from api.auth.endpoints import router as auth_router
from api.auth.keys import load_key_ring
from api.auth.passwords import Passwords
from api.auth.tokens import TokenCodec
from api.crypto import load_cipher
from api.database import create_engine, create_health_engine, create_sessionmaker
from api.docs.endpoints import router as docs_router
from api.errors import install_error_handlers
from api.export.endpoints import router as export_router
from api.grants.endpoints import router as grants_router
from api.health.draining import drain_on_sigterm
from api.health.endpoints import router as health_router
from api.journal.endpoints import build_router as build_resource_router
from api.journal.idempotency import sweep_forever
from api.logs import configure_logging
from api.metrics import PATH as METRICS_PATH
from api.metrics import install_metrics
from api.middleware import Envelope, Gate, Load
from api.openapi import build_openapi
from api.pairing.endpoints import router as pairing_router
from api.patients.endpoints import build_router as build_patients_router
from api.ratelimit import RateLimiter
from api.resources import RESOURCES
from api.routing import operation_id
from api.safety_flags.endpoints import own_router as own_flags_router
from api.safety_flags.endpoints import therapist_router as therapist_flags_router
from api.settings import Settings, get_settings
from api.summary.endpoints import router as summary_router
from api.sync.endpoints import router as sync_router
from api.web.endpoints import router as web_router

DESCRIPTION = """\
The integration journal for ketamine-assisted psychotherapy.

Patients write intentions, dosing sessions, reflections, mood check-ins and questionnaires;
therapists read what a patient chose to share. Every error is RFC 9457 `application/problem+json`.
"""

TAGS = [
    {"name": "accounts", "description": "Register, and read or change your own account."},
    {
        "name": "auth",
        "description": "OAuth 2 style tokens: password and refresh_token grants, revocation.",
    },
    *({"name": resource.name, "description": resource.description} for resource in RESOURCES),
    {
        "name": "sync",
        "description": "Offline clients: every change since a cursor; batches answered per operation.",
    },
    {
        "name": "summary",
        "description": "The journal in figures: mood, scores against baseline, safety flags.",
    },
    {
        "name": "safety flags",
        "description": "PHQ-9 item 9 above 0: a flag open until a therapist acknowledges it.",
    },
    {
        "name": "grants",
        "description": "A patient's consent: which therapist, which scopes, until when; revocable.",
    },
    {
        "name": "therapist",
        "description": "Read-only views of what patients shared, with patient-scoped read tokens.",
    },
    {"name": "privacy", "description": "The patient's own view of who read what."},
    {"name": "keys", "description": "Public keys that verify our tokens."},
    {
        "name": "health",
        "description": "Liveness and readiness for load balancers and orchestrators.",
    },
]


def settle_garbage_collector() -> None:
    """Keep Python's cycle collector off the objects that live as long as the process.

    Everything made at start-up (modules, routes, schemas, mappers) is moved out of the
    collector's sight, and collections run after 20,000 new objects rather than 700: under load
    the collector otherwise walks the whole start-up heap again and again, which cost more CPU
    than most of a request's own work. Request garbage is still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.node_name)
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.health_engine = create_health_engine(settings, engine)
        app.state.draining = False
        restore_sigterm = drain_on_sigterm(app.state, settings.drain_seconds)
        cipher = load_cipher(settings)
        app.state.sessionmaker = create_sessionmaker(engine, cipher)
        app.state.tokens = TokenCodec(load_key_ring(settings), settings)
        app.state.passwords = Passwords(settings)
        app.state.limiter = RateLimiter(settings, cipher.derive(b"rate-limit keys"))
        sweeper = asyncio.create_task(
            sweep_forever(
                app.state.sessionmaker,
                timedelta(hours=settings.idempotency_ttl_hours),
                settings.idempotency_sweep_batch,
                settings.idempotency_sweep_seconds,
            ),
            name="idempotency sweep",
        )
        settle_garbage_collector()
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            restore_sigterm()
            app.state.limiter.close()
            if app.state.health_engine is not engine:
                await app.state.health_engine.dispose()
            await engine.dispose()

    app = FastAPI(
        title="KAP integration journal",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # /docs is api.docs: Swagger UI served from this app under a strict policy. FastAPI's
        # own pages load it (and ReDoc) from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        # FastAPI's built-in OpenTelemetry hooks are off: the access log (api.logs) is ours, and
        # asking OpenTelemetry whether it is configured costs an environment lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (
        accounts_router,
        auth_router,
        *map(build_resource_router, RESOURCES),
        sync_router,
        summary_router,
        own_flags_router,
        grants_router,
        pairing_router,
        build_patients_router(RESOURCES),
        therapist_flags_router,
        audit_router,
        export_router,
        health_router,
        docs_router,
        web_router,
    ):
        # The routes themselves, not the router: FastAPI matches an included router's routes
        # through a wrapper that walks them twice per request (to match, then to handle), which
        # cost about 0.1-0.2 ms a request here. The routers carry their full paths and set no
        # include options, so the app serves and documents the same routes either way.
        app.router.routes.extend(router.routes)
    load = Load()
    # Off unless asked for: then /metrics is an unknown path, and requests pay nothing for it.
    metrics = (
        install_metrics(app, load, settings.concurrency, settings.metrics_networks)
        if settings.metrics_enabled
        else None
    )
    # The middleware, listed inside out (each wraps the ones added before it), so from the
    # outside in:
    # - ProxyHeadersMiddleware: the client's address (rate limits per address, logs, the metrics'
    #   allow list) is the one a trusted load balancer forwarded, whichever server runs the app
    #   (uvicorn's own handling, fed from here).
    # - Envelope: the request id, the access log line and HEAD served as GET, for every answer
    #   (a CORS preflight's included).
    # - CORSMiddleware, only when origins are configured: outside the Gate, so that a refusal
    #   (429, 413, 503) can be read by the browser that caused it, and a preflight is answered
    #   before any limit (with the request id, without the security headers).
    # - Gate: the rate limit, the body's size and time, the caller's share, a request slot, and
    #   the last-resort 500; every answer from there in (413, 429, 503 and 500 included) gets the
    #   security headers, and the caller's budget where one applies.
    # Then FastAPI's own: its exception handlers, and the routes.
    app.add_middleware(
        Gate,
        max_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        concurrency=settings.concurrency,
        wait_seconds=settings.db_pool_timeout_seconds,
        # Pressure is visible while there is pressure: a scrape never waits for a slot.
        exempt=("/healthz", "/readyz", METRICS_PATH) if metrics else ("/healthz", "/readyz"),
        per_caller=settings.per_caller,
        load=load,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Retry-After",
                "X-Request-ID",
                "Idempotent-Replayed",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )
    app.add_middleware(Envelope, observe=metrics.observe if metrics else None)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app
