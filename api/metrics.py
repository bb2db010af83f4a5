"""``GET /metrics``: the pressure on this node, in the Prometheus text format.

Served only when JOURNAL_METRICS_ENABLED is true (otherwise the path is unknown: 404), and only to
the addresses of JOURNAL_METRICS_ALLOW (403 for any other), the client address being the one the
trusted proxies forwarded (``api.ratelimit.client_address``). Each app has a registry of its
own, so several apps in one process (the tests) count apart.

Every label value comes from a closed set: the method (or ``other``), the route's template
(``/v1/patients/{patient_id}/checkins``, never the path; ``unmatched`` when no route answered,
which includes requests refused before routing), the status, and a refusal cause from
``api.errors.Refusal``. No id, address, email or token can reach a label.

Per request the access log (``api.middleware.Envelope``) calls ``Metrics.observe`` once; what is a
level rather than a count (slots, waiting requests, pool connections, Redis failures) is read
when Prometheus scrapes, and costs requests nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.types import Scope

from api.errors import REFUSAL_CAUSES, Forbidden
from api.middleware import Load
from api.ratelimit import client_address

PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds. Most answers take milliseconds; a request can wait for a slot or a pooled connection
# up to the pool timeout (5 s by default) and run up to the statement timeout (30 s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Metrics:
    """One app's metrics: what ``observe`` counts per request, and what is read at scrape time."""

    def __init__(self, app: FastAPI, load: Load, slots: int, allow: tuple[Network, ...]) -> None:
        self.allow = allow
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "journal_http_requests",
            "Requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "journal_http_request_duration_seconds",
            "Time from a request's arrival to its answer (waits for a slot included), by method "
            "and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "journal_http_refusals",
            "Requests answered 429 or 503, by status and cause: rate-limit, per-caller, busy "
            "(no request slot in time), draining, database-unreachable, database-busy (no pooled "
            "connection in time), database-locked, database-statement-timeout, "
            "database-conflict, other.",
            ["status", "cause"],
            registry=self.registry,
        )
        self.registry.register(_Levels(app, load, slots))
        # The labelled children, found once per combination: ``labels()`` validates and locks
        # on every call. The keys come from closed sets, so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        """Count one answered request (called by the access log)."""
        method = scope["method"]
        if method not in METHODS:
            method = "other"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status == 429 or status == 503:
            cause = scope.get("state", {}).get("refusal")
            self.refusals.labels(str(status), cause if cause in REFUSAL_CAUSES else "other").inc()

    def allows(self, scope: Scope) -> bool:
        try:
            address = ipaddress.ip_address(client_address(scope))
        except ValueError:
            return False  # "unknown", or something that is not an address: not on the list
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
        return any(address in network for network in self.allow)

    async def endpoint(self, request: Request) -> Response:
        """The metrics, to the allowed addresses only."""
        if not self.allows(request.scope):
            raise Forbidden("Metrics are served only to the addresses of JOURNAL_METRICS_ALLOW.")
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, load: Load, slots: int, allow: tuple[Network, ...]) -> Metrics:
    """Serve ``GET /metrics`` from ``app``, outside the OpenAPI spec (it is for operators)."""
    metrics = Metrics(app, load, slots, allow)
    app.add_route(PATH, metrics.endpoint, methods=["GET"], include_in_schema=False)
    return metrics


class _Levels(Collector):
    """What is read when Prometheus scrapes: request slots, the database pool, Redis failures."""

    def __init__(self, app: FastAPI, load: Load, slots: int) -> None:
        self.app = app
        self.load = load
        self.slots = slots

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "journal_concurrency_slots",
            "Requests this process serves at once (JOURNAL_MAX_CONCURRENT_REQUESTS).",
            value=self.slots,
        )
        yield GaugeMetricFamily(
            "journal_concurrency_slots_in_use",
            "Requests being served now, each holding a slot.",
            value=self.load.serving,
        )
        yield GaugeMetricFamily(
            "journal_concurrency_waiting",
            "Requests waiting for a slot now.",
            value=self.load.waiting,
        )
        state = self.app.state
        pool = getattr(getattr(state, "engine", None), "pool", None)
        if isinstance(pool, QueuePool):  # the pools that count their connections
            yield GaugeMetricFamily(
                "journal_db_pool_size",
                "Connections the request pool keeps (JOURNAL_DB_POOL_SIZE).",
                value=pool.size(),
            )
            yield GaugeMetricFamily(
                "journal_db_pool_connections_in_use",
                "Connections of the request pool checked out now.",
                value=pool.checkedout(),
            )
        limiter = getattr(state, "limiter", None)
        if limiter is not None:
            yield CounterMetricFamily(
                "journal_redis_errors",
                "Calls to the rate limiter's Redis that failed or timed out (requests were let "
                "through).",
                value=limiter.failures,
            )
            yield GaugeMetricFamily(
                "journal_rate_limiter_degraded",
                "1 while the rate limiter's Redis failed within the last minute, else 0.",
                value=1 if limiter.degraded else 0,
            )
