"""Capturing what the service logs, as the JSON lines it writes, for tests that read them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from api.logs import json_formatter


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log record of the test, at every level, formatted as the service formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
