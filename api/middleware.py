"""Pure ASGI middleware: cheaper than BaseHTTPMiddleware and safe with streaming bodies."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    note_refusal,
    problem_response,
)


class BodySizeLimit:
    """Take the whole request body, within a size limit and a time limit, before the app sees it.

    413 for a body over ``max_bytes`` (declared or streamed). A body that has not arrived
    ``timeout_seconds`` after its headers is answered 408 and its connection closed: a client
    sending a few bytes and then nothing must not keep anything of the service's waiting. This
    sits outside the concurrency limit, so no request slot is ever held while a client's bytes
    are awaited: the app is called with the body already in hand.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_framing(scope)
        if not declared and not chunked:
            await self.app(scope, receive, send)  # no body to wait for
            return
        if declared is None or declared <= self.max_bytes:
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    body = await _read_body(receive, self.max_bytes)
            except TimeoutError:
                late = RequestTimeout(
                    f"The request body did not arrive within {self.timeout_seconds:g} seconds: "
                    "the connection is closed. Send the body with its headers.",
                    headers={"Connection": "close"},
                )
                await problem_response(late.status, late.body(), late.headers)(scope, receive, send)
                return
            if body is None:
                return  # the client went away: there is no one to answer
            if len(body) <= self.max_bytes:
                await self.app(scope, _replay(body, receive), send)
                return
        too_large = PayloadTooLarge(f"The request body must be at most {self.max_bytes} bytes.")
        await problem_response(too_large.status, too_large.body())(scope, receive, send)


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


class SecurityHeaders:
    """No API response is cached by a browser or proxy unless its route says otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestId:
    """Take the caller's X-Request-ID when it is a plain token, else make one; echo it back.

    It names the request in logs and audit records, so it is never free text.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID.fullmatch(candidate) else ""
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


@dataclass
class Load:
    """A ``ConcurrencyLimit``'s requests now: holding a slot, and waiting for one."""

    serving: int = 0
    waiting: int = 0


class ConcurrencyLimit:
    """Serve at most ``limit`` requests at once; the others wait their turn, first come first
    served, up to ``wait_seconds``, then get 503 with ``Retry-After``. One caller (a bearer
    token, else a client address) has at most ``per_caller`` requests in flight, waiting or
    served: the next is refused at once with 429, so no caller can fill a node's slots.

    A process on a small machine does more work per second with a few requests in hand than
    with every open connection's request interleaved: 64 requests at once cost up to twice the
    CPU each (more objects alive for the garbage collector, more switching, more database
    backends busy). Waiting costs nothing but a place in the queue. Liveness is never queued.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        wait_seconds: float,
        exempt: tuple[str, ...],
        per_caller: int | None = None,
        load: Load | None = None,
    ):
        self.app = app
        self.slots = asyncio.Semaphore(limit)
        self.wait_seconds = wait_seconds
        self.exempt = exempt
        self.per_caller = per_caller
        # Requests in flight by caller, only while there are some (never logged or kept).
        self.in_flight: dict[bytes, int] = {}
        # Read by the metrics at scrape time (plain counts: nothing to do per request but add).
        self.load = load or Load()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
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
            await problem_response(refused.status, refused.body(), refused.headers)(
                scope, receive, send
            )
            return
        self.in_flight[caller] = held + 1
        try:
            await self._served(scope, receive, send)
        finally:
            left = self.in_flight[caller] - 1
            if left:
                self.in_flight[caller] = left
            else:
                del self.in_flight[caller]

    async def _served(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            await problem_response(busy.status, busy.body(), busy.headers)(scope, receive, send)
            return
        load.serving += 1
        try:
            await self.app(scope, receive, send)
        finally:
            load.serving -= 1
            self.slots.release()


class HeadAsGet:
    """HEAD answers wherever GET does (RFC 9110 9.3.2): the GET's status and headers, no body.

    The app below sees a GET (its routes declare GET only, so the spec lists each read once);
    the middleware outside it, the access log among them, still sees the HEAD.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send_without_body)
        finally:
            # The route the GET matched names the HEAD too, in the access log and the metrics.
            if "route" in as_get:
                scope["route"] = as_get["route"]


def _caller(scope: Scope) -> bytes:
    """Who is asking: the bearer token as sent, else the client's address."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    client = scope.get("client")
    return f"address {client[0] if client else 'unknown'}".encode()
