"""JSON Schemas of tool arguments: bounding them for grammar-constrained decoding, and checking values.

This module owns pure functions used by the in-process LLM engine (:mod:`.llama_chat`):

* :func:`bounded_schema` returns a copy of a schema that accepts a subset of the same values but lets a
  grammar-constrained decoder always finish: strings and arrays get a maximum length where they have
  none (a small model otherwise loops inside a string until the token cap), and small integer ranges
  become enums, because llama-cpp-python's schema-to-grammar converter ignores ``minimum`` and
  ``maximum``.
* :func:`schema_violation` checks a decoded value against the original schema for the keywords the
  converter cannot express, so that an argument object that is not valid is reported, never passed on.
* :func:`nesting_depth` measures a schema without recursing, so that one too deep for the recursive
  functions here and for llama-cpp-python's converter is refused before it reaches them (the codec
  already refuses such JSON from a client; this guards every other way a tool arrives).

The checker covers the JSON Schema keywords tool definitions use (``type``, ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``prefixItems``, length and
item-count bounds, numeric bounds, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``); others are
ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Strings and arrays without an explicit bound get these, so a constrained decode always ends.
DEFAULT_MAX_STRING_CHARS = 64
DEFAULT_MAX_ARRAY_ITEMS = 8
#: Integer ranges up to this many values are written as enums, which the grammar can enforce.
MAX_INTEGER_ENUM_VALUES = 1000
#: Schemas nested deeper than this (objects and arrays) are refused: the walkers here recurse.
MAX_SCHEMA_DEPTH = 64

_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_JSON_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "number": (int, float),
    "integer": int,
    "null": type(None),
}


def bounded_schema(
    schema: Mapping[str, Any],
    *,
    max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
    max_array_items: int = DEFAULT_MAX_ARRAY_ITEMS,
) -> dict[str, Any]:
    """A copy of ``schema`` whose every value is also valid for ``schema``, and that always terminates."""
    out: dict[str, Any] = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), Mapping):
            out[key] = {
                name: bounded_schema(sub, max_string_chars=max_string_chars, max_array_items=max_array_items)
                for name, sub in out[key].items()
            }
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), Sequence):
            out[key] = [
                bounded_schema(sub, max_string_chars=max_string_chars, max_array_items=max_array_items)
                for sub in out[key]
            ]
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), Mapping):
            out[key] = bounded_schema(out[key], max_string_chars=max_string_chars, max_array_items=max_array_items)
    kind = out.get("type")
    free = not any(key in out for key in ("enum", "const", "pattern", "format"))
    if kind == "string" and free and "maxLength" not in out:
        out["maxLength"] = max(max_string_chars, int(out.get("minLength", 0)))
    if kind == "array" and "maxItems" not in out:
        out["maxItems"] = max(max_array_items, int(out.get("minItems", 0)))
    if kind == "integer" and "enum" not in out and "const" not in out:
        low, high = _integer_range(out)
        if low is not None and high is not None and 0 < high - low + 1 <= MAX_INTEGER_ENUM_VALUES:
            out["enum"] = list(range(low, high + 1))
    return out


def _integer_range(schema: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive integer bounds a schema's numeric keywords allow (``None``: unbounded)."""
    lows = [math.ceil(schema["minimum"])] if "minimum" in schema else []
    if "exclusiveMinimum" in schema:
        lows.append(math.floor(schema["exclusiveMinimum"]) + 1)
    highs = [math.floor(schema["maximum"])] if "maximum" in schema else []
    if "exclusiveMaximum" in schema:
        highs.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    return (max(lows) if lows else None), (min(highs) if highs else None)


def schema_violation(schema: Mapping[str, Any], value: Any, *, root: Mapping[str, Any] | None = None) -> str | None:
    """Why ``value`` is not valid against ``schema`` (a short message with a JSON path), or ``None``."""
    return _violation(schema, value, root if root is not None else schema, "$")


def _violation(schema: Mapping[str, Any], value: Any, root: Mapping[str, Any], path: str) -> str | None:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return _violation(target, value, root, path)
    for sub in schema.get("allOf", ()):
        if (problem := _violation(sub, value, root, path)) is not None:
            return problem
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options and all(_violation(sub, value, root, path) is not None for sub in options):
            return f"{path}: matches none of {key}"
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not any(_is_type(value, name) for name in kinds):
            return f"{path}: {json_type(value)} is not {'/'.join(kinds)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {value!r} is not {schema['const']!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_violation(schema, value, path)
    if isinstance(value, str) and not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
        return f"{path}: length {len(value)} is out of bounds"
    if isinstance(value, list):
        return _array_violation(schema, value, root, path)
    if isinstance(value, dict):
        return _object_violation(schema, value, root, path)
    return None


def _number_violation(schema: Mapping[str, Any], value: float, path: str) -> str | None:
    if value < schema.get("minimum", -math.inf) or value > schema.get("maximum", math.inf):
        return f"{path}: {value} is out of [{schema.get('minimum')}, {schema.get('maximum')}]"
    if value <= schema.get("exclusiveMinimum", -math.inf) or value >= schema.get("exclusiveMaximum", math.inf):
        return f"{path}: {value} is out of its exclusive bounds"
    return None


def _array_violation(schema: Mapping[str, Any], value: list[Any], root: Mapping[str, Any], path: str) -> str | None:
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
        return f"{path}: {len(value)} items is out of bounds"
    prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
    for i, (sub, item) in enumerate(zip(prefix, value, strict=False)):
        if (problem := _violation(sub, item, root, f"{path}[{i}]")) is not None:
            return problem
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value[len(prefix) :], start=len(prefix)):
            if (problem := _violation(items, item, root, f"{path}[{i}]")) is not None:
                return problem
    return None


def _object_violation(
    schema: Mapping[str, Any], value: dict[str, Any], root: Mapping[str, Any], path: str
) -> str | None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required", ()):
        if name not in value:
            return f"{path}: missing required property {name!r}"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = properties.get(name)
        if sub is None:
            if extra is False:
                return f"{path}: unexpected property {name!r}"
            sub = extra if isinstance(extra, Mapping) else None
        if sub is not None and (problem := _violation(sub, item, root, f"{path}.{name}")) is not None:
            return problem
    return None


def _is_type(value: Any, name: str) -> bool:
    expected = _JSON_TYPES.get(name)
    if expected is None:
        return True  # an unknown type name is not ours to reject
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, expected)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name) and not (name == "integer" and isinstance(value, float)):
            return name
    return type(value).__name__


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0), iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
