"""Tool argument schemas: bounding for constrained decoding, and the validity check."""

from __future__ import annotations

from typing import Any

import pytest

from openrealtime.engines.tool_schema import bounded_schema, json_type, schema_violation

ALARM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "label": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "days": {"type": "array", "items": {"type": "string", "enum": ["mon", "tue"]}},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 100}, "minItems": 10},
        "volume": {"type": "number", "minimum": 0, "maximum": 1},
        "when": {"$ref": "#/$defs/time"},
    },
    "required": ["hour"],
    "additionalProperties": False,
    "$defs": {"time": {"type": "object", "properties": {"zone": {"type": "string"}}}},
}


def test_bounded_schema_adds_bounds_without_widening() -> None:
    bounded = bounded_schema(ALARM, max_string_chars=40, max_array_items=5)
    props = bounded["properties"]
    assert props["hour"]["enum"] == list(range(24))
    assert props["label"]["maxLength"] == 40
    assert "maxLength" not in props["code"]  # a pattern already bounds it
    assert props["days"]["maxItems"] == 5
    assert "maxLength" not in props["days"]["items"]  # an enum needs no bound
    assert props["tags"]["maxItems"] == 10  # never below minItems
    assert props["tags"]["items"]["maxLength"] == 100  # never below minLength
    assert "enum" not in props["volume"]  # numbers cannot be enumerated
    assert bounded["$defs"]["time"]["properties"]["zone"]["maxLength"] == 40
    assert ALARM["properties"]["label"] == {"type": "string"}  # the input is not modified


@pytest.mark.parametrize(
    ("schema", "enum"),
    [
        ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 4}, [1, 2, 3]),
        ({"type": "integer", "minimum": 0.5, "maximum": 2.5}, [1, 2]),
        ({"type": "integer", "minimum": 0}, None),
        ({"type": "integer", "minimum": 0, "maximum": 10**6}, None),
    ],
)
def test_integer_ranges_become_enums_when_small(schema: dict[str, Any], enum: list[int] | None) -> None:
    assert bounded_schema(schema).get("enum") == enum


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"hour": 7, "days": ["mon"], "volume": 0.5, "when": {"zone": "UTC"}}, None),
        ({}, "$: missing required property 'hour'"),
        ({"hour": 24}, "$.hour: 24 is out of [0, 23]"),
        ({"hour": True}, "$.hour: boolean is not integer"),
        ({"hour": 7.0}, None),
        ({"hour": 7.5}, "$.hour: number is not integer"),
        ({"hour": 1, "days": ["sun"]}, "$.days[0]: 'sun' is not one of ['mon', 'tue']"),
        ({"hour": 1, "volume": 2}, "$.volume: 2 is out of [0, 1]"),
        ({"hour": 1, "snooze": 5}, "$: unexpected property 'snooze'"),
        ({"hour": 1, "when": {"zone": 3}}, "$.when.zone: integer is not string"),
        ({"hour": 1, "tags": ["x"]}, "$.tags: 1 items is out of bounds"),
        ([], "$: array is not object"),
    ],
)
def test_schema_violation(value: Any, problem: str | None) -> None:
    assert schema_violation(ALARM, value) == problem


def test_unions_and_all_of() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "allOf": [{"not-a-keyword": 1}]}
    assert schema_violation(schema, None) is None
    assert schema_violation(schema, "x") is None
    assert schema_violation(schema, 3) == "$: matches none of anyOf"
    assert schema_violation({"type": ["integer", "string"]}, 1.5) == "$: number is not integer/string"
    assert schema_violation({"const": "a"}, "b") == "$: 'b' is not 'a'"
    assert schema_violation({"type": "string", "minLength": 2}, "a") == "$: length 1 is out of bounds"
    assert schema_violation({"type": "array", "prefixItems": [{"type": "integer"}]}, ["a"]) is not None
    assert schema_violation({"type": "number", "exclusiveMaximum": 1}, 1) is not None


def test_json_type() -> None:
    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object"
    ]  # fmt: skip
