"""Breaking changes between two OpenAPI 3 documents, as a client of the older one would feel them.

Pure functions over the parsed JSON: ``breaking_changes(old, new)`` lists what an integrator built
on ``old`` could trip over in ``new``:

- an operation removed (paths compare with their parameter names ignored);
- a success status or a media type removed from an operation;
- a response field removed, or no longer always present;
- a response that may now hold a type or an enum value the old one never did (a generated
  client's enums refuse unknown values);
- an input newly required: a body, a parameter, a body field, or a body field required only when
  another has some value (JSON Schema's `if`/`then`: "invitation_code when role is therapist");
- an input narrowed: a type, an enum value or an extra field no longer accepted, a limit
  tightened (length, size, range, pattern, format);
- a body media type no longer accepted.

Adding operations, optional inputs, response fields, input enum values, or relaxing a limit is
not breaking. Responses are compared for success statuses only: a client treats any 4xx/5xx as a
problem whatever its documented shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Direction = Literal["input", "output"]
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
ANY = "any"
# Input limits: the new one must not be stricter. True where a larger value is stricter.
LOWER_BOUNDS = {"minLength": True, "minItems": True, "minimum": True, "exclusiveMinimum": True}
UPPER_BOUNDS = {"maxLength": False, "maxItems": False, "maximum": False, "exclusiveMaximum": False}


@dataclass(frozen=True, order=True)
class Change:
    kind: str
    where: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class _Shape:
    """A schema flattened for comparison: anyOf/oneOf/allOf and $ref resolved."""

    types: frozenset[str]  # JSON types, "null" included when null is allowed; ANY for {}
    enum: frozenset[str] | None  # the allowed non-null values, JSON-encoded; None: any value
    properties: dict[str, Json] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    extra_allowed: bool = True
    items: Json | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # the component it came from, if one
    # Fields required only under a condition (`if` -> `then`): (the condition, JSON-encoded; field).
    conditional: frozenset[tuple[str, str]] = frozenset()


def parse_version(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    if not match:
        raise ValueError(f"not a MAJOR.MINOR.PATCH version: {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def allows_breaking(old_version: str, new_version: str) -> bool:
    """Whether going from one API version to the other announces breaking changes (semver):
    a new major version, or below 1.0.0 a new minor one."""
    old, new = parse_version(old_version), parse_version(new_version)
    if old[0] == 0:
        return new[:2] > old[:2]
    return new[0] > old[0]


def next_breaking_version(version: str) -> str:
    major, minor, _patch = parse_version(version)
    return f"0.{minor + 1}.0" if major == 0 else f"{major + 1}.0.0"


def breaking_changes(old: Json, new: Json) -> list[Change]:
    return _Differ(old, new).run()


def operation_key(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


class _Differ:
    def __init__(self, old: Json, new: Json) -> None:
        self.old, self.new = old, new
        self.changes: set[Change] = set()
        self.seen: set[tuple[Direction, str, str]] = set()

    def run(self) -> list[Change]:
        old_ops, new_ops = _operations(self.old), _operations(self.new)
        for key, (label, old_op, old_params) in old_ops.items():
            if key not in new_ops:
                self.add("operation removed", label)
                continue
            _, new_op, new_params = new_ops[key]
            self.parameters(label, old_params, new_params)
            self.request_body(label, old_op.get("requestBody"), new_op.get("requestBody"))
            self.responses(label, old_op.get("responses", {}), new_op.get("responses", {}))
        return sorted(self.changes)

    def add(self, kind: str, where: str, detail: str = "") -> None:
        self.changes.add(Change(kind, where, detail))

    # --- operations -------------------------------------------------------------------------

    def parameters(
        self,
        label: str,
        old_params: dict[tuple[str, str], Json],
        new_params: dict[tuple[str, str], Json],
    ) -> None:
        for key, new_param in new_params.items():
            where = f"{label} {key[0]} parameter {new_param['name']}"
            old_param = old_params.get(key)
            if new_param.get("required") and not (old_param and old_param.get("required")):
                self.add("input newly required", where)
            if old_param is not None:
                self.compare(
                    _parameter_schema(old_param), _parameter_schema(new_param), "input", where
                )

    def request_body(self, label: str, old: Json | None, new: Json | None) -> None:
        old = _resolve(self.old, old) if old else None
        new = _resolve(self.new, new) if new else None
        where = f"{label} request body"
        if new is None:
            return  # no body any more: whatever a client sends is not read
        if new.get("required") and not (old and old.get("required")):
            self.add("input newly required", where)
        if old is None:
            return
        for media_type, old_media in old.get("content", {}).items():
            new_media = new.get("content", {}).get(media_type)
            if new_media is None:
                self.add("input narrowed", where, f"{media_type} no longer accepted")
                continue
            self.compare(old_media.get("schema", {}), new_media.get("schema", {}), "input", where)

    def responses(self, label: str, old: Json, new: Json) -> None:
        for status, old_response in old.items():
            if not status.startswith("2"):
                continue
            where = f"{label} {status} response"
            if status not in new:
                self.add("success response removed", where)
                continue
            old_response = _resolve(self.old, old_response)
            new_response = _resolve(self.new, new[status])
            for media_type, old_media in old_response.get("content", {}).items():
                new_media = new_response.get("content", {}).get(media_type)
                if new_media is None:
                    self.add("success response removed", where, f"no more {media_type}")
                    continue
                self.compare(
                    old_media.get("schema", {}), new_media.get("schema", {}), "output", where
                )

    # --- schemas ----------------------------------------------------------------------------

    def compare(self, old_schema: Json, new_schema: Json, direction: Direction, where: str) -> None:
        old, new = _flatten(self.old, old_schema), _flatten(self.new, new_schema)
        if old.name or new.name:
            # A component is compared once per direction, and named by itself: a field removed
            # from CheckinRead is one change, however many operations return check-ins.
            pair = (direction, old.name or where, new.name or where)
            if pair in self.seen:
                return
            self.seen.add(pair)
            if old.name == new.name and old.name:
                where = old.name
        if direction == "input":
            self.compare_input(old, new, where)
        else:
            self.compare_output(old, new, where)
        if old.items is not None and new.items is not None:
            self.compare(old.items, new.items, direction, f"{where}[]")
        for name, old_property in old.properties.items():
            if name in new.properties:
                self.compare(old_property, new.properties[name], direction, f"{where}.{name}")

    def compare_input(self, old: _Shape, new: _Shape, where: str) -> None:
        lost = _uncovered(old.types, new.types)
        if lost:
            self.add("input type narrowed", where, f"no longer accepts {_names(lost)}")
        if new.enum is not None:
            if old.enum is None:
                self.add("input enum narrowed", where, f"now only {_values(new.enum)}")
            elif old.enum - new.enum:
                self.add(
                    "input enum narrowed",
                    where,
                    f"no longer accepts {_values(old.enum - new.enum)}",
                )
        for name in sorted(new.required - old.required):
            self.add("input newly required", f"{where}.{name}")
        for condition, name in sorted(new.conditional - old.conditional):
            if name not in old.required:
                self.add("input newly required", f"{where}.{name}", f"when {condition}")
        if not new.extra_allowed and new.types & {"object", ANY}:
            for name in sorted(set(old.properties) - set(new.properties)):
                self.add("input narrowed", f"{where}.{name}", "field no longer accepted")
            if old.extra_allowed:
                self.add("input narrowed", where, "extra fields no longer accepted")
        for limit, larger_is_stricter in {**LOWER_BOUNDS, **UPPER_BOUNDS}.items():
            if limit not in new.limits:
                continue
            before, after = old.limits.get(limit), new.limits[limit]
            if before is None or (after > before if larger_is_stricter else after < before):
                self.add("input narrowed", where, f"{limit} {before} -> {after}")
        for limit in ("pattern", "format", "multipleOf"):
            if limit in new.limits and new.limits[limit] != old.limits.get(limit):
                self.add(
                    "input narrowed",
                    where,
                    f"{limit} {old.limits.get(limit)} -> {new.limits[limit]}",
                )

    def compare_output(self, old: _Shape, new: _Shape, where: str) -> None:
        gained = _uncovered(new.types, old.types)
        if gained:
            self.add("response type widened", where, f"may now be {_names(gained)}")
        if old.enum is not None:
            if new.enum is None:
                self.add("response enum widened", where, "no longer a fixed set of values")
            elif new.enum - old.enum:
                self.add(
                    "response enum widened", where, f"may now be {_values(new.enum - old.enum)}"
                )
        for name in sorted(set(old.properties) - set(new.properties)):
            self.add("response field removed", f"{where}.{name}")
        for name in sorted((old.required - new.required) & set(new.properties)):
            self.add("response field no longer always present", f"{where}.{name}")


Parameters = dict[tuple[str, str], Json]


def _operations(spec: Json) -> dict[tuple[str, str], tuple[str, Json, Parameters]]:
    """Each operation by (method, path with its parameter names blanked): its label, itself and
    its parameters (the path item's and its own) by (in, name)."""
    found: dict[tuple[str, str], tuple[str, Json, Parameters]] = {}
    for path, item in spec.get("paths", {}).items():
        item = _resolve(spec, item)
        placeholders = re.findall(r"\{([^}]*)\}", path)
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            params: Parameters = {}
            for raw in [*item.get("parameters", []), *operation.get("parameters", [])]:
                param = _resolve(spec, raw)
                name = param["name"]
                if param["in"] == "header":
                    name = name.lower()
                elif param["in"] == "path" and name in placeholders:
                    name = f"#{placeholders.index(name)}"  # matched by place, not by name
                params[(param["in"], name)] = param
            found[(method, operation_key(path))] = (f"{method.upper()} {path}", operation, params)
    return found


def _resolve(spec: Json, node: Json) -> Json:
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported: {ref}")
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
        seen += 1
        if seen > 50:
            raise ValueError(f"reference loop at {ref}")
    return node


def _ref_name(node: Json) -> str | None:
    ref = node.get("$ref") if isinstance(node, dict) else None
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _flatten(spec: Json, schema: Json) -> _Shape:
    name = _ref_name(schema)
    schema = _resolve(spec, schema)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        shape = _union([_flatten(spec, branch) for branch in branches])
    elif "allOf" in schema:
        own = _flatten(spec, {k: v for k, v in schema.items() if k != "allOf"})
        shape = _intersection([own, *(_flatten(spec, branch) for branch in schema["allOf"])])
    else:
        shape = _plain(schema)
    shape.name = name or shape.name
    return shape


def _plain(schema: Json) -> _Shape:
    values: list[Any] | None = None
    if "const" in schema:
        values = [schema["const"]]
    elif "enum" in schema:
        values = list(schema["enum"])
    declared = schema.get("type")
    types: set[str]
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = set(declared)
    elif values is not None:
        types = {_json_type(value) for value in values}
    elif "properties" in schema:
        types = {"object"}
    elif "items" in schema:
        types = {"array"}
    else:
        types = {ANY}
    if schema.get("nullable") is True or (values is not None and None in values):
        types.add("null")  # nullable is OpenAPI 3.0's spelling
    items = schema.get("items")
    then = schema.get("then")
    conditional = (
        frozenset((_json(schema["if"]), name) for name in then.get("required", []))
        if isinstance(then, dict) and isinstance(schema.get("if"), dict)
        else frozenset()
    )
    return _Shape(
        types=frozenset(types),
        enum=None if values is None else frozenset(_json(v) for v in values if v is not None),
        properties=dict(schema.get("properties", {})),
        required=frozenset(schema.get("required", [])),
        extra_allowed=schema.get("additionalProperties", True) is not False,
        items=items if isinstance(items, dict) else None,
        limits={
            key: schema[key]
            for key in (*LOWER_BOUNDS, *UPPER_BOUNDS, "pattern", "format", "multipleOf")
            if key in schema
        },
        conditional=conditional,
    )


def _union(parts: list[_Shape]) -> _Shape:
    """anyOf/oneOf. With one branch besides null (pydantic's `X | None`), that branch, nullable."""
    types = frozenset(kind for part in parts for kind in part.types)
    real = [part for part in parts if part.types != {"null"}]
    if len(real) == 1:
        (only,) = real
        return _Shape(
            types=types,
            enum=only.enum,
            properties=only.properties,
            required=only.required,
            extra_allowed=only.extra_allowed,
            items=only.items,
            limits=only.limits,
            name=only.name,
            conditional=only.conditional,
        )
    enums = [part.enum for part in real]
    required = [part.required for part in real]
    return _Shape(
        types=types,
        enum=frozenset(v for e in enums if e is not None for v in e)
        if all(e is not None for e in enums)
        else None,
        properties={k: v for part in real for k, v in part.properties.items()},
        required=frozenset.intersection(*required) if required else frozenset(),
        extra_allowed=any(part.extra_allowed for part in real),
    )


def _intersection(parts: list[_Shape]) -> _Shape:
    """allOf: every part holds."""
    typed = [part.types for part in parts if ANY not in part.types]
    return _Shape(
        types=frozenset.intersection(*typed) if typed else frozenset({ANY}),
        enum=next((part.enum for part in parts if part.enum is not None), None),
        properties={k: v for part in parts for k, v in part.properties.items()},
        required=frozenset(name for part in parts for name in part.required),
        extra_allowed=all(part.extra_allowed for part in parts),
        items=next((part.items for part in parts if part.items is not None), None),
        limits={k: v for part in parts for k, v in part.limits.items()},
        name=next((part.name for part in parts if part.name), None),
        conditional=frozenset(pair for part in parts for pair in part.conditional),
    )


def _uncovered(wanted: frozenset[str], offered: frozenset[str]) -> frozenset[str]:
    """The types in ``wanted`` that ``offered`` does not cover."""
    if ANY in offered:
        return frozenset()
    return frozenset(
        kind
        for kind in wanted
        if kind not in offered and not (kind == "integer" and "number" in offered)
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _names(types: frozenset[str]) -> str:
    return ", ".join(sorted(types))


def _values(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _parameter_schema(parameter: Json) -> Json:
    """A parameter's schema without its `null` option: a query or header parameter is text or
    absent, never JSON null, so a spec that stops listing null takes nothing from any client."""
    schema: Json = parameter.get("schema", {})
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
