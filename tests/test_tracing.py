"""With OpenTelemetry's SQLAlchemy instrumentation on, as an operator turns it on, the service
answers as without it, and every statement it runs makes a span.

The instrumentation is the real one (``opentelemetry-instrumentation-sqlalchemy``) on the app's
own engine, exporting to memory. Its declared SQLAlchemy range stops below 2.1, so it is
installed without that extra and instrumented with ``skip_dep_check``, as an operator on
SQLAlchemy 2.1 does. What it relies on is SQLAlchemy's public execution events: a statement run
around them would make no span, or, announced without an execution context, fail the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.walk import invitation as therapist_invitation
from tests.support.walk import walk


@contextmanager
def traced(engine: AsyncEngine) -> Iterator[tuple[InMemorySpanExporter, list[str]]]:
    """The engine instrumented for the duration: the spans it made, and every statement the
    engine announced to its ``before_cursor_execute`` listeners (the instrumentation's hook),
    in order."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    announced: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        announced.append(statement)

    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield exporter, announced
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
        instrumentor.uninstrument()
        provider.shutdown()


def statement_of(span: ReadableSpan) -> str | None:
    attributes = span.attributes or {}
    text = attributes.get("db.statement", attributes.get("db.query.text"))
    return None if text is None else str(text)


async def test_every_route_answers_as_without_tracing_and_each_statement_makes_a_span(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    untraced = await walk(client, await therapist_invitation())
    assert [(a.route, a.status) for a in untraced] == [(a.route, a.expected) for a in untraced]

    invitation = await therapist_invitation()  # on the operator's engine: not traced
    # A plain client this time, so that every answer is kept and compared, whatever it is.
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    with traced(app.state.engine) as (exporter, announced):
        async with plain:
            answers = await walk(plain, invitation)
        spans = exporter.get_finished_spans()

    failed = [f"{a.method} {a.route}" for a in answers if a.status >= 500]
    assert answers == untraced, f"{len(failed)} of {len(answers)} answers failed: {failed}"
    # One finished span per statement, carrying that statement, and none without one.
    statements = [text for span in spans if (text := statement_of(span)) is not None]
    assert len(announced) >= len(answers)
    assert sorted(statements) == sorted(announced)
