"""The service's own middleware: two pure ASGI layers, ``Envelope`` outside and ``Gate`` inside.

Every layer of middleware costs a coroutine call on every request, and every one that wraps
``send`` a call more on each message of every answer: so the service's own work around a request
is done as plain steps in these two, each with one ``send`` wrapper. They are two, not one,
because Starlette's CORS middleware (when configured) sits between them: its preflight answers
are named and logged (``Envelope``) but not headed (``Gate``), and its headers come after the
security headers. Pure ASGI rather than BaseHTTPMiddleware: cheaper, and safe with streaming
bodies.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    internal_error,
    note_refusal,
    problem_response,
)
from api.ratelimit import spend_request, too_many

Header = tuple[bytes, bytes]

# Built once: the names and values as an ASGI message carries them (lower-case bytes).
_REQUEST_ID_NAME = b"x-request-id"
_PLAIN_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_NO_STORE: Header = (b"cache-control", b"no-store")
_NOSNIFF: Header = (b"x-content-type-options", b"nosniff")


class Envelope:
    """What every exchange carries, from the outermost of the service's middleware.

    - Its request id: the caller's X-Request-ID when it is a plain token, else a new one. It is
      put in ``scope["state"]["request_id"]``, bound to every log line of the request (structlog's
      context variables) and echoed on the answer. It names the request in logs and audit
      records, so it is never free text.
    - One access log line: method, route template, status, duration, request id; and the same
      route, status and duration to the metrics' ``observe`` when metrics are on.
    - HEAD answers wherever GET does (RFC 9110 9.3.2): the GET's status and headers, no body. The
      app below sees a GET (its routes declare GET only, so the spec lists each read once); the
      log line and the metrics still see the HEAD, with the route the GET matched.
    """

    def __init__(
        self, app: ASGIApp, observe: Callable[[Scope, str, int, float], None] | None = None
    ) -> None:
        self.app = app
        # A lazy proxy, bound on first use: the app's lifespan configures logging after the
        # middleware is built.
        self.logger = structlog.get_logger("api.access")
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (_REQUEST_ID_NAME, request_id.encode())
        head = scope["method"] == "HEAD"
        started = time.perf_counter()
        status = 500
        # Not cleared on the way out: the server's last-resort error handler logs after us, and
        # each request runs in a task of its own, with a context of its own.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_enveloped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), echoed]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # The state dict is shared: what the layers below note there (a refusal) is seen here.
        inner = {**scope, "method": "GET"} if head else scope
        try:
            await self.app(inner, receive, send_enveloped)
        finally:
            if head and "route" in inner:
                scope["route"] = inner["route"]
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            self.logger.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
            if self.observe is not None:
                self.observe(scope, route, status, seconds)


def _request_id(headers: Iterable[Header]) -> str:
    """The last X-Request-ID the caller sent, if it is a plain token; else a new one."""
    request_id = ""
    for name, value in headers:
        if name == _REQUEST_ID_NAME:
            request_id = value.decode("latin-1") if _PLAIN_TOKEN.fullmatch(value) else ""
    return request_id or uuid.uuid4().hex


@dataclass
class Load:
    """A ``Gate``'s requests now: holding a slot, and waiting for one."""

    serving: int = 0
    waiting: int = 0


class Gate:
    """What stands between a request and the app, as plain steps, each refusing with a problem:

    1. The caller's rate-limit budget (``api.ratelimit.spend_request``): 429 when it is spent.
    2. The whole body, within ``max_bytes`` and ``body_timeout_seconds``: 413 for a body over the
       size (declared or streamed); 408, and the connection closed, for one that has not arrived
       in time: a client sending a few bytes and then nothing must not keep anything of the
       service's waiting. Taken before a slot is, so no slot is ever held while a client's bytes
       are awaited: the app is called with the body already in hand.
    3. One caller's share (a bearer token, else a client address): at most ``per_caller``
       requests in flight, waiting or served; the next is refused at once with 429, so no caller
       can fill a node's slots.
    4. A request slot: at most ``concurrency`` requests are served at once; the others wait their
       turn, first come first served, up to ``wait_seconds``, then get 503 with ``Retry-After``.
       A process on a small machine does more work per second with a few requests in hand than
       with every open connection's request interleaved: 64 requests at once cost up to twice
       the CPU each (more objects alive for the garbage collector, more switching, more
       database backends busy). Waiting costs nothing but a place in the queue. The ``exempt``
       paths (liveness) skip 3 and 4: they are never queued.
    5. The app, with the last resort: an exception that escaped it before its answer began is
       a 500 problem (503 for a database failure) sent from here, still in the request's slot,
       so that it is headed and logged like any answer (Starlette's own handler sits outside
       all the middleware).

    Every answer sent from here in, the refusals included, gets the security headers: no cache
    (``Cache-Control: no-store``) unless its route chose its own, and ``nosniff``; and, once the
    request spent from a budget, that budget (``RateLimit-*``) unless the answer reports one of
    its own (a password check's 429).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        body_timeout_seconds: float,
        concurrency: int,
        wait_seconds: float,
        exempt: tuple[str, ...],
        per_caller: int | None = None,
        load: Load | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.slots = asyncio.Semaphore(concurrency)
        self.wait_seconds = wait_seconds
        self.exempt = exempt
        self.per_caller = per_caller
        # Requests in flight by caller, only while there are some (never logged or kept).
        self.in_flight: dict[bytes, int] = {}
        # Read by the metrics at scrape time (plain counts: nothing to do per request but add).
        self.load = load or Load()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer(send)
        verdict = await spend_request(scope)
        if verdict is not None:
            if not verdict.allowed:
                note_refusal(scope, "rate-limit")
                await _refuse(too_many(verdict), scope, receive, answer)
                return
            answer.budget = verdict.raw_headers()
        declared, chunked = _body_framing(scope)
        if declared or chunked:
            body = await self._body(declared, receive)
            if body is None:
                return  # the client went away: there is no one to answer
            if isinstance(body, ProblemError):
                await _refuse(body, scope, receive, answer)
                return
            receive = _replay(body, receive)
        if scope["path"] in self.exempt:
            await self._answered(scope, receive, answer)
            return
        caller = _caller(scope)
        held = self.in_flight.get(caller, 0)
        if self.per_caller is not None and held >= self.per_caller:
            note_refusal(scope, "per-caller")
            refused = TooManyRequests(
                f"This caller already has {held} requests in flight on this node: wait for "
                "their answers, then retry.",
                headers={"Retry-After": "1"},
            )
            await _refuse(refused, scope, receive, answer)
            return
        self.in_flight[caller] = held + 1
        try:
            await self._served(scope, receive, answer)
        finally:
            left = self.in_flight[caller] - 1
            if left:
                self.in_flight[caller] = left
            else:
                del self.in_flight[caller]

    async def _body(self, declared: int | None, receive: Receive) -> bytes | ProblemError | None:
        """The whole body, or the problem that refuses it; None when the client went away."""
        if declared is None or declared <= self.max_bytes:
            try:
                async with asyncio.timeout(self.body_timeout_seconds):
                    body = await _read_body(receive, self.max_bytes)
            except TimeoutError:
                return RequestTimeout(
                    f"The request body did not arrive within {self.body_timeout_seconds:g} "
                    "seconds: the connection is closed. Send the body with its headers.",
                    headers={"Connection": "close"},
                )
            if body is None or len(body) <= self.max_bytes:
                return body
        return PayloadTooLarge(f"The request body must be at most {self.max_bytes} bytes.")

    async def _served(self, scope: Scope, receive: Receive, answer: _Answer) -> None:
        """The app's answer within a slot, or 503 when none came free in time."""
        load = self.load
        try:
            if self.slots.locked():
                load.waiting += 1
                try:
                    async with asyncio.timeout(self.wait_seconds):
                        await self.slots.acquire()
                finally:
                    load.waiting -= 1
            else:
                await self.slots.acquire()  # a slot is free: taken at once, no timer needed
        except TimeoutError:
            note_refusal(scope, "busy")
            busy = ServiceUnavailable(
                "The service is busy right now: retry shortly (with the same Idempotency-Key, "
                "a retried write cannot be applied twice).",
                headers={"Retry-After": "1"},
            )
            await _refuse(busy, scope, receive, answer)
            return
        load.serving += 1
        try:
            await self._answered(scope, receive, answer)
        finally:
            load.serving -= 1
            self.slots.release()

    async def _answered(self, scope: Scope, receive: Receive, answer: _Answer) -> None:
        """The app's answer; the last resort's when the app raised before its answer began."""
        try:
            await self.app(scope, receive, answer)
        except Exception as exc:
            if answer.started:
                raise
            await internal_error(exc, scope)(scope, receive, answer)


class _Answer:
    """One request's ``send`` inside the ``Gate``: heads the answer, and notes that it began."""

    __slots__ = ("budget", "send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.budget: list[Header] = []  # the caller's RateLimit-* headers, once it spent
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            message["headers"] = _headed(message.get("headers", []), self.budget)
        await self.send(message)


def _headed(headers: Iterable[Header], budget: list[Header]) -> list[Header]:
    """An answer's headers, then the budget unless the answer reports one of its own, then
    no-store unless the route chose its own caching, then nosniff."""
    headed = list(headers)
    if budget and not any(name == b"ratelimit-limit" for name, _ in headed):
        headed += budget
    if not any(name.lower() == b"cache-control" for name, _ in headed):
        headed.append(_NO_STORE)
    headed.append(_NOSNIFF)
    return headed


async def _refuse(problem: ProblemError, scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(problem.status, problem.body(), problem.headers)(scope, receive, send)


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The body, or as much of it as shows it is over ``max_bytes``; None on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more and size <= max_bytes:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    declared, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _caller(scope: Scope) -> bytes:
    """Who is asking: the bearer token as sent, else the client's address."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    client = scope.get("client")
    return f"address {client[0] if client else 'unknown'}".encode()
