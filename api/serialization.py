from __future__ import annotations

from typing import Any

import orjson


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)
