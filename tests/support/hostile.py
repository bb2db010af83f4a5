"""Hostile input: what the committed spec promises for each operation, the free-text fields of
every resource, and the strings that test them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.journal import assert_problem

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
METHODS = ("get", "put", "post", "patch", "delete")

Json = dict[str, Any]


def spec_operation(method: str, template: str) -> Json:
    operation: Json = SPEC["paths"][template][method.lower()]
    return operation


def documented_statuses(method: str, template: str) -> set[int]:
    return {int(code) for code in spec_operation(method, template)["responses"]}


def security_scheme(method: str, template: str) -> str | None:
    """`login`, `patient_read`, or None for a public operation."""
    requirements = spec_operation(method, template).get("security", [])
    return next((name for requirement in requirements for name in requirement), None)


def operations_with_query(name: str) -> list[tuple[str, str]]:
    """(method, path template) of every operation that takes query parameter ``name``."""
    return [
        (method.upper(), template)
        for template, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        and any(p["in"] == "query" and p["name"] == name for p in operation.get("parameters", []))
    ]


def operations_with_body() -> list[tuple[str, str, str]]:
    """(method, path template, media type) of every operation that takes a request body."""
    return [
        (method.upper(), template, next(iter(operation["requestBody"]["content"])))
        for template, item in SPEC["paths"].items()
        for method, operation in item.items()
        if method in METHODS and "requestBody" in operation
    ]


def assert_refused(response: httpx.Response, method: str, template: str) -> Json:
    """A clear refusal: a 4xx problem+json the spec documents for this operation."""
    status = response.status_code
    assert 400 <= status < 500, f"{method} {template}: {status} {response.text}"
    body = assert_problem(response, status)
    assert status in documented_statuses(method, template), (
        f"{method} {template} answered {status}, which its spec does not document "
        f"(documented: {sorted(documented_statuses(method, template))}): {response.text}"
    )
    return body


def error_locations(problem: Json) -> list[list[str | int]]:
    return [list(issue["loc"]) for issue in problem.get("errors", [])]


# Free text, field by field: where it goes in a create body, where it comes back, its limit in
# characters (code points, as the spec's maxLength counts them).
@dataclass(frozen=True)
class TextField:
    name: str
    resource: str
    limit: int
    put: Callable[[Json, str], None]
    get: Callable[[Json], Any]
    # The last element of the validation error's `loc` for this field.
    loc: str


def _set(key: str) -> Callable[[Json, str], None]:
    def put(body: Json, value: str) -> None:
        body[key] = value

    return put


def _prompt(key: str) -> Callable[[Json, str], None]:
    def put(body: Json, value: str) -> None:
        pair = {"prompt": "What came up?", "answer": "Quiet."}
        body["prompts"] = [{**pair, key: value}]

    return put


def _emotion(body: Json, value: str) -> None:
    body["emotions"] = [value]


JOURNAL_TEXT = [
    TextField("sessions.notes", "sessions", 5000, _set("notes"), lambda e: e["notes"], "notes"),
    TextField("intentions.text", "intentions", 2000, _set("text"), lambda e: e["text"], "text"),
    TextField("reflections.text", "reflections", 20000, _set("text"), lambda e: e["text"], "text"),
    TextField(
        "reflections.prompt",
        "reflections",
        500,
        _prompt("prompt"),
        lambda e: e["prompts"][0]["prompt"],
        "prompt",
    ),
    TextField(
        "reflections.answer",
        "reflections",
        5000,
        _prompt("answer"),
        lambda e: e["prompts"][0]["answer"],
        "answer",
    ),
    TextField(
        "reflections.emotion", "reflections", 40, _emotion, lambda e: e["emotions"][0], "emotions"
    ),
    TextField("checkins.note", "checkins", 2000, _set("note"), lambda e: e["note"], "note"),
]
DISPLAY_NAME_LIMIT = 100

GRINNING = "\U0001f600"  # 4 bytes in UTF-8, a surrogate pair in UTF-16: one character

# Strings a person may write: stored and returned exactly, code point for code point.
KEPT: dict[str, Callable[[int], str]] = {
    "rtl_mark": lambda _: "\u200f\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd\u200f",
    "rtl_override": lambda _: "abc \u202edcba\u202c end",
    "zwj_family": lambda _: "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "zero_width": lambda _: "a\u200bb\u200cc\u200dd\u2060e\ufefff",
    "combining": lambda _: "e\u0301 a\u0308 Z\u0351\u036b\u0343\u036a\u0302",
    "emoji": lambda _: (
        f"{GRINNING} \U0001f389 \U0001fae0 \U0001f1fa\U0001f1e6 \U0001f44d\U0001f3fd"
    ),
    "astral_letters": lambda _: "漢字 \U0001d518\U0001d52b\U0001d526 \U00020000",
    "line_separators": lambda _: "one\u2028two\u2029three",
    "tab_and_newlines": lambda _: "one\ttwo\nthree\r\nfour",
    "noncharacters": lambda _: "a\ufffe\uffffb\U0010ffff",
    "astral_at_limit": lambda limit: GRINNING * limit,
}

# Strings no database stores faithfully, or no person writes: a 422 that names the field.
REFUSED: dict[str, Callable[[int], str]] = {
    "nul": lambda _: "before\x00after",
    "lone_high_surrogate": lambda _: "a\ud800b",
    "lone_low_surrogate": lambda _: "a\udc00b",
    "reversed_surrogate_pair": lambda _: "\ude00\ud83d",
    "escape_sequence": lambda _: "\x1b[31mred",
    "astral_over_limit": lambda limit: GRINNING * (limit + 1),
}


def json_bytes(value: Any, *, escaped: bool) -> bytes:
    """JSON text as a client sends it: raw UTF-8, or every non-ASCII character escaped (the only
    way to send a lone surrogate: ``"\\ud800"``)."""
    if escaped:
        return json.dumps(value, ensure_ascii=True).encode("ascii")
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
