"""The spec stays backward compatible with the last release, unless the API version says otherwise.

The last released spec is kept as openapi/snapshot-v<version>.json. The app's current spec is
compared with the newest snapshot (tests/support/spec_diff.py): removing an operation or a
response field, making an input newly required, or narrowing a type or an enum fails this test,
and prints every such change, until ``__version__`` in api/__init__.py announces them (a new major
version; below 1.0.0, a new minor one). A release then adds its own snapshot.

A break that v1 clients survive (a response field that may now be null, an input the server
already refused) can instead be listed, with why, in the snapshot's notes
(``snapshot-v<version>.notes.json``): the check then wants exactly the listed breaks, no more
and no fewer, so the list stays true.

The diff itself is proven on small hand-made specs below: each kind of break is caught, and
additive changes are not.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api import __version__
from api.app import create_app
from api.settings import Settings
from tests.support.spec_diff import (
    Change,
    allows_breaking,
    breaking_changes,
    next_breaking_version,
    parse_version,
)

Json = dict[str, Any]
OPENAPI_DIR = Path(__file__).resolve().parents[1] / "openapi"


def snapshots() -> dict[tuple[int, int, int], Path]:
    found = {}
    for path in OPENAPI_DIR.glob("snapshot-v*.json"):
        if path.name.endswith(".notes.json"):
            continue
        found[parse_version(path.stem.removeprefix("snapshot-v"))] = path
    return found


def test_each_snapshot_is_named_by_its_version() -> None:
    assert snapshots(), "openapi/ keeps the last released spec as snapshot-v<version>.json"
    for version, path in snapshots().items():
        spec = json.loads(path.read_text())
        assert parse_version(spec["info"]["version"]) == version, path.name


def notes_path(snapshot: Path) -> Path:
    return snapshot.with_name(f"{snapshot.stem}.notes.json")


def intended_breaks(snapshot: Path) -> dict[str, str]:
    """The breaks a snapshot's notes accept, each with why: a v1 client keeps working through
    every one of them (say how in ``why``). The check below wants exactly these and no other."""
    notes = notes_path(snapshot)
    if not notes.exists():
        return {}
    listed = json.loads(notes.read_text())["intended_breaks"]
    breaks = {entry["change"]: entry["why"] for entry in listed}
    assert len(breaks) == len(listed), f"{notes.name} lists a change twice"
    assert all(why.strip() for why in breaks.values()), f"{notes.name}: every break says why"
    return breaks


def unlisted_and_stale(
    released: Json, current: Json, intended: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The breaks not listed as intended, and the listed ones the spec no longer makes."""
    found = {str(change) for change in breaking_changes(released, current)}
    return sorted(found - set(intended)), sorted(set(intended) - found)


def test_the_current_spec_keeps_faith_with_the_last_release(settings: Settings) -> None:
    version, path = max(snapshots().items())
    released: Json = json.loads(path.read_text())
    current = create_app(settings).openapi()
    assert current["info"]["version"] == __version__
    assert parse_version(__version__) >= version, (
        f"api/__init__.py says {__version__}, older than the released {path.name}"
    )
    changes, stale = unlisted_and_stale(released, current, intended_breaks(path))
    assert not stale, (
        f"{notes_path(path).name} lists breaks the API no longer makes; remove them:\n"
        + "\n".join(f"  - {change}" for change in stale)
    )
    report = "\n".join(f"  - {change}" for change in changes)
    if changes and allows_breaking(released["info"]["version"], __version__):
        print(f"\nBreaking changes since {path.name}, announced by {__version__}:\n{report}")
    elif changes:
        pytest.fail(
            f"The API breaks clients of {released['info']['version']} ({path.name}):\n{report}\n"
            f"Keep the old behaviour, or announce the break: set __version__ in api/__init__.py "
            f"to {next_breaking_version(released['info']['version'])}, run `make openapi`, and "
            f"add that release's snapshot when it ships.",
            pytrace=False,
        )


# --- The diff, on small specs --------------------------------------------------------------


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def base_spec() -> Json:
    """Three operations on items. Kind is both an input and an output, Sort only an input,
    Status only an output."""
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "kind": ref("Kind"),
            "status": ref("Status"),
            "score": {"type": "integer"},
            "note": nullable({"type": "string"}),
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "name", "kind", "status", "score", "note", "tags"],
    }
    item_create = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 50},
            "kind": ref("Kind"),
            "score": {"type": "number", "minimum": 0, "maximum": 10},
            "note": nullable({"type": "string"}),
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        },
        "required": ["name"],
    }
    page = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": ref("Item")}},
        "required": ["items"],
    }
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}}
    sort = {"name": "sort", "in": "query", "schema": ref("Sort")}

    def ok(schema: Json) -> Json:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "Items", "version": "1.0.0"},
        "paths": {
            "/items": {
                "get": {"parameters": [limit, sort], "responses": {"200": ok(ref("Page"))}},
                "post": {
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("ItemCreate")}},
                    },
                    "responses": {
                        "201": ok(ref("Item")),
                        "422": {"description": "Invalid", "content": {}},
                    },
                },
            },
            "/items/{item_id}": {
                "get": {
                    "parameters": [
                        {
                            "name": "item_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": ok(ref("Item"))},
                }
            },
        },
        "components": {
            "schemas": {
                "Item": item,
                "ItemCreate": item_create,
                "Page": page,
                "Kind": {"type": "string", "enum": ["a", "b"]},
                "Sort": {"type": "string", "enum": ["asc", "desc"]},
                "Status": {"type": "string", "enum": ["open", "closed"]},
            }
        },
    }


Mutation = Callable[[Json], object]


def schema(spec: Json, name: str) -> Json:
    found: Json = spec["components"]["schemas"][name]
    return found


def item_property(name: str) -> Callable[[Json], Json]:
    return lambda spec: schema(spec, "Item")["properties"][name]


def create_property(name: str) -> Callable[[Json], Json]:
    return lambda spec: schema(spec, "ItemCreate")["properties"][name]


def list_operation(spec: Json) -> Json:
    found: Json = spec["paths"]["/items"]["get"]
    return found


def create_operation(spec: Json) -> Json:
    found: Json = spec["paths"]["/items"]["post"]
    return found


BREAKING: dict[str, tuple[Mutation, Change]] = {
    "operation removed": (
        lambda s: s["paths"]["/items"].pop("post"),
        Change("operation removed", "POST /items"),
    ),
    "path removed": (
        lambda s: s["paths"].pop("/items/{item_id}"),
        Change("operation removed", "GET /items/{item_id}"),
    ),
    "response field removed": (
        lambda s: schema(s, "Item")["properties"].pop("score"),
        Change("response field removed", "Item.score"),
    ),
    "response field made optional": (
        lambda s: schema(s, "Item")["required"].remove("name"),
        Change("response field no longer always present", "Item.name"),
    ),
    "response field made nullable": (
        lambda s: item_property("score")(s).update(type=["integer", "null"]),
        Change("response type widened", "Item.score", "may now be null"),
    ),
    "response field changes type": (
        lambda s: item_property("score")(s).update(type="string"),
        Change("response type widened", "Item.score", "may now be string"),
    ),
    "response enum gains a value": (
        lambda s: schema(s, "Kind")["enum"].append("c"),
        Change("response enum widened", "Kind", 'may now be "c"'),
    ),
    "success status changed": (
        lambda s: create_operation(s)["responses"].update(
            {"200": create_operation(s)["responses"].pop("201")}
        ),
        Change("success response removed", "POST /items 201 response"),
    ),
    "response media type removed": (
        lambda s: list_operation(s)["responses"]["200"].update(content={"text/csv": {}}),
        Change("success response removed", "GET /items 200 response", "no more application/json"),
    ),
    "body field newly required": (
        lambda s: schema(s, "ItemCreate")["required"].append("kind"),
        Change("input newly required", "ItemCreate.kind"),
    ),
    "new required body field": (
        lambda s: (
            schema(s, "ItemCreate")["properties"].update(colour={"type": "string"}),
            schema(s, "ItemCreate")["required"].append("colour"),
        ),
        Change("input newly required", "ItemCreate.colour"),
    ),
    "parameter newly required": (
        lambda s: list_operation(s)["parameters"][0].update(required=True),
        Change("input newly required", "GET /items query parameter limit"),
    ),
    "new required parameter": (
        lambda s: list_operation(s)["parameters"].append(
            {"name": "owner", "in": "query", "required": True, "schema": {"type": "string"}}
        ),
        Change("input newly required", "GET /items query parameter owner"),
    ),
    "input enum loses a value": (
        lambda s: schema(s, "Sort")["enum"].remove("desc"),
        Change("input enum narrowed", "Sort", 'no longer accepts "desc"'),
    ),
    "enum of inputs and outputs loses a value": (
        lambda s: schema(s, "Kind")["enum"].remove("b"),
        Change("input enum narrowed", "Kind", 'no longer accepts "b"'),
    ),
    "input string becomes an enum": (
        lambda s: create_property("name")(s).update(enum=["x", "y"]),
        Change("input enum narrowed", "ItemCreate.name", 'now only "x", "y"'),
    ),
    "input number becomes integer": (
        lambda s: create_property("score")(s).update(type="integer"),
        Change("input type narrowed", "ItemCreate.score", "no longer accepts number"),
    ),
    "input no longer nullable": (
        lambda s: schema(s, "ItemCreate")["properties"].update(note={"type": "string"}),
        Change("input type narrowed", "ItemCreate.note", "no longer accepts null"),
    ),
    "input maxLength tightened": (
        lambda s: create_property("name")(s).update(maxLength=20),
        Change("input narrowed", "ItemCreate.name", "maxLength 50 -> 20"),
    ),
    "input minimum raised": (
        lambda s: create_property("score")(s).update(minimum=1),
        Change("input narrowed", "ItemCreate.score", "minimum 0 -> 1"),
    ),
    "input array limit tightened": (
        lambda s: create_property("tags")(s).update(maxItems=3),
        Change("input narrowed", "ItemCreate.tags", "maxItems 5 -> 3"),
    ),
    "input array items narrowed": (
        lambda s: create_property("tags")(s)["items"].update(maxLength=10),
        Change("input narrowed", "ItemCreate.tags[]", "maxLength None -> 10"),
    ),
    "input pattern added": (
        lambda s: create_property("name")(s).update(pattern="^[a-z]+$"),
        Change("input narrowed", "ItemCreate.name", "pattern None -> ^[a-z]+$"),
    ),
    "parameter limit tightened": (
        lambda s: list_operation(s)["parameters"][0]["schema"].update(maximum=50),
        Change("input narrowed", "GET /items query parameter limit", "maximum 100 -> 50"),
    ),
    "input field no longer accepted": (
        lambda s: schema(s, "ItemCreate")["properties"].pop("tags"),
        Change("input narrowed", "ItemCreate.tags", "field no longer accepted"),
    ),
    "body media type no longer accepted": (
        lambda s: create_operation(s)["requestBody"].update(
            content={"application/x-www-form-urlencoded": {"schema": ref("ItemCreate")}}
        ),
        Change("input narrowed", "POST /items request body", "application/json no longer accepted"),
    ),
}


def mutated(mutation: Mutation) -> Json:
    spec = base_spec()
    mutation(spec)
    return spec


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_each_kind_of_break_is_caught(case: str) -> None:
    mutation, expected = BREAKING[case]
    changes = breaking_changes(base_spec(), mutated(mutation))
    assert expected in changes, changes


def test_a_body_made_required_is_caught() -> None:
    old = base_spec()
    create_operation(old)["requestBody"]["required"] = False
    assert breaking_changes(old, base_spec()) == [
        Change("input newly required", "POST /items request body")
    ]


def test_a_component_is_reported_once_however_often_it_is_used() -> None:
    # Item is returned by POST /items, GET /items/{item_id} and, in a page, by GET /items.
    changes = breaking_changes(base_spec(), mutated(BREAKING["response field removed"][0]))
    assert changes == [Change("response field removed", "Item.score")]


def test_inline_schemas_are_named_by_where_they_are() -> None:
    def inline(spec: Json) -> None:
        list_operation(spec)["responses"]["200"]["content"]["application/json"]["schema"] = schema(
            spec, "Page"
        )

    old, new = mutated(inline), mutated(inline)
    schema(new, "Page")["properties"].pop("items")
    assert breaking_changes(old, new) == [
        Change("response field removed", "GET /items 200 response.items")
    ]


NOT_BREAKING: dict[str, Mutation] = {
    "nothing": lambda s: None,
    "new operation": lambda s: s["paths"]["/items/{item_id}"].update(
        delete={"responses": {"204": {"description": "Gone"}}}
    ),
    "new optional body field": lambda s: schema(s, "ItemCreate")["properties"].update(
        colour={"type": "string"}
    ),
    "new optional parameter": lambda s: list_operation(s)["parameters"].append(
        {"name": "owner", "in": "query", "schema": {"type": "string"}}
    ),
    "new response field": lambda s: schema(s, "Item")["properties"].update(
        colour={"type": "string"}
    ),
    "input enum gains a value": lambda s: schema(s, "Sort")["enum"].append("random"),
    "input limit relaxed": lambda s: create_property("name")(s).update(maxLength=500),
    "input minimum dropped": lambda s: create_property("score")(s).pop("minimum"),
    "input widened to nullable": lambda s: create_property("name")(s).update(
        type=["string", "null"]
    ),
    "input integer widened to number": lambda s: list_operation(s)["parameters"][0][
        "schema"
    ].update(type="number"),
    "required input made optional": lambda s: schema(s, "ItemCreate").update(required=[]),
    "response enum loses a value": lambda s: schema(s, "Status")["enum"].remove("closed"),
    "response no longer nullable": lambda s: schema(s, "Item")["properties"].update(
        note={"type": "string"}
    ),
    "path parameter renamed": lambda s: s["paths"].update(
        {
            "/items/{id}": {
                "get": {
                    **s["paths"].pop("/items/{item_id}")["get"],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                }
            }
        }
    ),
    "error response removed": lambda s: create_operation(s)["responses"].pop("422"),
    "extra success status": lambda s: create_operation(s)["responses"].update(
        {"200": copy.deepcopy(create_operation(s)["responses"]["201"])}
    ),
    "description edited": lambda s: schema(s, "Item").update(description="An item."),
    "header parameter renamed in case": lambda s: create_operation(s)["parameters"][0].update(
        name="idempotency-key", required=False
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_BREAKING))
def test_additive_and_relaxing_changes_pass(case: str) -> None:
    assert breaking_changes(base_spec(), mutated(NOT_BREAKING[case])) == []


def test_several_breaks_are_all_listed_in_order() -> None:
    def many(spec: Json) -> None:
        for case in ("operation removed", "input enum loses a value", "response field removed"):
            BREAKING[case][0](spec)

    changes = breaking_changes(base_spec(), mutated(many))
    assert [str(change) for change in changes] == [
        'input enum narrowed: Sort (no longer accepts "desc")',
        "operation removed: POST /items",
        "response field removed: Item.score",
    ]


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("0.1.0", "0.1.0", False),
        ("0.1.0", "0.1.1", False),
        ("0.1.0", "0.2.0", True),
        ("0.1.0", "1.0.0", True),
        ("1.4.2", "1.5.0", False),
        ("1.4.2", "2.0.0", True),
        ("2.0.0", "1.9.9", False),
    ],
)
def test_only_a_breaking_version_bump_allows_breaks(old: str, new: str, allowed: bool) -> None:
    assert allows_breaking(old, new) is allowed


def test_the_version_to_bump_to() -> None:
    assert next_breaking_version("0.1.0") == "0.2.0"
    assert next_breaking_version("1.4.2") == "2.0.0"
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        parse_version("1.0")


def test_the_check_fails_on_a_break_without_a_bump_and_passes_with_one() -> None:
    """The decision test_the_current_spec_keeps_faith_with_the_last_release makes, end to end."""
    old = base_spec()
    new = mutated(BREAKING["response field removed"][0])
    assert breaking_changes(old, new)
    assert not allows_breaking(old["info"]["version"], new["info"]["version"])
    new["info"]["version"] = next_breaking_version(old["info"]["version"])
    assert allows_breaking(old["info"]["version"], new["info"]["version"])


def test_listed_breaks_pass_and_the_list_must_stay_exact() -> None:
    """A break listed in the snapshot's notes passes; any other still fails; a listed break the
    spec no longer makes is reported as stale, so the notes cannot outlive what they excuse."""
    old = base_spec()
    removed = mutated(BREAKING["response field removed"][0])
    listed = {str(Change("response field removed", "Item.score")): "v1 clients ignore it"}
    assert unlisted_and_stale(old, removed, listed) == ([], [])
    assert unlisted_and_stale(old, removed, {}) == (["response field removed: Item.score"], [])
    assert unlisted_and_stale(old, base_spec(), listed) == (
        [],
        ["response field removed: Item.score"],
    )
