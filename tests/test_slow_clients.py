"""Slow clients against a real server process: bodies that never finish and headers sent a byte
at a time must not take the service from anyone else.

A request whose body has not arrived ``JOURNAL_BODY_TIMEOUT_SECONDS`` (10 s) after its headers
is answered 408 and its connection closed, and no request slot is held while its bytes are
awaited. Here 50 connections keep sending half a body, and 50 more send headers one byte a
second, for 30 seconds; meanwhile ordinary requests must all succeed within an ordinary client's
own timeout, and afterwards the process must serve a full load of requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from api.settings import Settings
from tests.support.people import Person, register
from tests.support.server import ServerProcess, running_server, service_environment

ATTACK_SECONDS = 30.0
SLOW_BODIES = 50
SLOW_HEADERS = 50
# An ordinary client's own patience: an answer later than this is a failure, as it would be
# for a phone.
CLIENT_TIMEOUT = httpx.Timeout(10.0)
HALF_A_BODY = (
    b"POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n"
    b'{"email":'
)
HEADERS_NEVER_ENDING = (
    b"GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 4000 + b"\r\n\r\n"
)


async def slow_body(port: int, sent: asyncio.Semaphore, stop: asyncio.Event) -> list[bytes]:
    """Open, send half a body, wait for the server to answer and close; again until stopped.
    Returns what the server sent on each connection it closed."""
    answers: list[bytes] = []
    first = True
    while not stop.is_set():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(HALF_A_BODY)
            await writer.drain()
            if first:
                sent.release()
                first = False
            answer = asyncio.ensure_future(reader.read())  # everything, up to the server's close
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({answer, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if answer.done():
                answers.append(answer.result())
            else:
                answer.cancel()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return answers


async def slow_headers(port: int, stop: asyncio.Event) -> None:
    """Send a request's headers one byte a second, reconnecting if the server hangs up."""
    while not stop.is_set():
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for byte in HEADERS_NEVER_ENDING:
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if stop.is_set():
                    return
        except OSError:
            continue  # the server closed it: start another
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def ordinary_traffic(server: ServerProcess, person: Person, stop: asyncio.Event) -> list[str]:
    """A patient's app going about its day; one line per answer that was not a success."""
    failures: list[str] = []
    served = 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as client:
        while not stop.is_set():
            for method, path, body in (
                ("POST", "/v1/checkins", {"mood": 6}),
                ("GET", "/v1/me", None),
                ("GET", "/v1/checkins?limit=5", None),
            ):
                try:
                    response = await client.request(method, path, json=body, headers=person.headers)
                except httpx.TimeoutException as exc:
                    failures.append(
                        f"{method} {path}: no answer within the client's timeout ({exc!r})"
                    )
                    continue
                served += 1
                if not response.is_success:
                    failures.append(f"{method} {path}: {response.status_code} {response.text}")
    if served == 0:
        failures.append("no ordinary request was answered at all")
    return failures


async def test_slow_senders_do_not_hold_the_service(tmp_path: Path, settings: Settings) -> None:
    env = service_environment(settings.database_url, tmp_path / "data")
    # Four people share the final burst of 30: no per-caller share in the way (its own tests).
    env["JOURNAL_MAX_REQUESTS_PER_CALLER"] = "30"
    async with running_server(env, tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as client:
            people = [await register(client) for _ in range(4)]

        stop = asyncio.Event()
        sent = asyncio.Semaphore(0)
        bodies = [
            asyncio.create_task(slow_body(server.port, sent, stop)) for _ in range(SLOW_BODIES)
        ]
        headers = [
            asyncio.create_task(slow_headers(server.port, stop)) for _ in range(SLOW_HEADERS)
        ]
        for _ in range(SLOW_BODIES):  # every slow body is waiting on the server before we start
            await asyncio.wait_for(sent.acquire(), 30.0)
        traffic = [asyncio.create_task(ordinary_traffic(server, p, stop)) for p in people]
        await asyncio.sleep(ATTACK_SECONDS)  # the length of the attack, not a wait for a result
        stop.set()
        answers = [a for task in bodies for a in await asyncio.wait_for(task, 30.0)]
        for task in headers:
            await asyncio.wait_for(task, 30.0)
        failures = [line for task in traffic for line in await task]

        assert failures == [], "\n".join(failures[:20])
        # Each slow body was answered 408 (and closed: the read above ended) at least once.
        assert len(answers) >= SLOW_BODIES
        for answer in answers:
            head = answer.split(b"\r\n\r\n", 1)[0].lower()
            assert head.startswith(b"http/1.1 408"), answer[:300]
            assert b"connection: close" in head
            assert b"content-type: application/problem+json" in head

        # Afterwards nothing is held: more requests at once than the process has slots, all served.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as client:
            answered = await asyncio.gather(
                *(client.get("/v1/me", headers=people[i % 4].headers) for i in range(30))
            )
        assert [r.status_code for r in answered] == [200] * 30
        assert "Traceback" not in server.log_text(), server.log_tail()
