"""Structured JSON logs, one object per line, every line of a request carrying its request id.

What may be logged is decided once, not at each call site: the request line (written by
``api.middleware.Envelope``) names the route template (`/v1/patients/{patient_id}/checkins`),
never the concrete path or the query string, and an unexpected exception is logged by type and
code location (``exception_summary``), never by its message (a database error's message can
quote the row it failed on).
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


DATA_BEARING_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore")


def configure_logging(level: str = "INFO", node: str = "") -> None:
    """Route the standard library's logging (uvicorn's included) and structlog through one JSON
    formatter on stdout. Called once per process, from the app's lifespan. Every line names the
    ``node`` (JOURNAL_NODE_NAME): several processes write to one log."""
    shared = [*_SHARED, _NodeName(node)]
    structlog.configure(
        # Level first: a line below the level costs nothing more.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter(shared))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # Uvicorn's access line carries the full path and query string: ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    # These write SQL parameters and URLs at DEBUG and INFO: rows and tokens. Held at WARNING
    # whatever the level asked for.
    for name in DATA_BEARING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def json_formatter(shared: list[Any] | None = None) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=_SHARED if shared is None else shared,
    )


class _NodeName:
    def __init__(self, node: str) -> None:
        self.node = node

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("node", self.node)
        return event


def exception_summary(exc: BaseException) -> dict[str, Any]:
    """Where it failed, without what it said."""
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "frames": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames[-8:]],
    }
