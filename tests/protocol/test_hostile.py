"""Hostile JSON is an ``error`` event and the session goes on (issue 10, defect 8).

Arrays nested 1,000 deep, a tool schema nested 400 deep in ``session.update``, a 5,000-digit integer:
each used to close the session with 1011 and a traceback.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from openrealtime.contracts import ChatRequest, ToolSpec
from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions
from openrealtime.engines.tool_schema import MAX_SCHEMA_DEPTH, nesting_depth
from openrealtime.exceptions import EngineError, ProtocolError
from openrealtime.protocol.codec import MAX_JSON_DEPTH, SessionKind, parse_client_event
from tests.conftest import TIMEOUT_S

USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}


def nested_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def deep_arrays(levels: int) -> str:
    return '{"type":"conversation.item.create","event_id":"e1","item":' + "[" * levels + "]" * levels + "}"


def deep_tool(levels: int) -> str:
    tool = {"type": "function", "name": "f", "parameters": nested_schema(levels)}
    return json.dumps({"type": "session.update", "event_id": "e2", "session": {"type": "realtime", "tools": [tool]}})


def big_integer(digits: int) -> str:
    return '{"type":"conversation.item.truncate","item_id":"x","content_index":0,"audio_end_ms":' + "9" * digits + "}"


def refused(frame: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_client_event(frame, SessionKind.REALTIME)
    return info.value


@pytest.mark.parametrize("levels", [1_000, 100_000])
def test_arrays_nested_past_the_recursion_limit_are_invalid_json(levels: int) -> None:
    error = refused(deep_arrays(levels))
    assert (error.code, error.param) == ("invalid_json", None)
    assert (
        error.message == f"Invalid event: failed to parse JSON value. It nests more than {MAX_JSON_DEPTH} levels deep."
    )


def test_a_value_nested_past_the_limit_is_invalid_value_on_its_field() -> None:
    error = refused(deep_arrays(MAX_JSON_DEPTH))  # the event object is one more level
    assert (error.code, error.param, error.event_id) == ("invalid_value", "item[0][0][0]", "e1")
    assert parse_client_event(deep_tool(20), SessionKind.REALTIME).type == "session.update"


@pytest.mark.parametrize("levels", [40, 400])
def test_a_deep_tool_schema_is_refused_with_its_param(levels: int) -> None:
    error = refused(deep_tool(levels))
    assert (error.code, error.param, error.event_id) == ("invalid_value", "session.tools[0].parameters", "e2")
    assert error.message == (
        f"Invalid 'session.tools[0].parameters': the value nests more than {MAX_JSON_DEPTH} levels deep."
    )


def test_an_integer_of_5000_digits_is_invalid_json() -> None:
    error = refused(big_integer(5_000))
    assert (error.code, error.message) == (
        "invalid_json",
        "Invalid event: failed to parse JSON value. A number has more than 4300 digits.",
    )
    assert parse_client_event(big_integer(4_000), SessionKind.REALTIME).type == "conversation.item.truncate"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    frame = '{"type":"session.update","session":{"type":"realtime","audio":{"output":{"speed":' + constant + "}}}}"
    error = refused(frame)
    assert (error.code, error.message) == (
        "invalid_json",
        f"Invalid event: failed to parse JSON value. {constant} is not a JSON value.",
    )


def test_nesting_depth_is_measured_without_recursion() -> None:
    assert nesting_depth("x") == 0
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth(deep) == 100_001


def test_a_too_deep_tool_schema_fails_the_response_cleanly_at_the_engine() -> None:
    """However a tool reaches llama.cpp's grammar builder, a schema too deep is an EngineError."""
    model = LlamaChatModel.__new__(LlamaChatModel)  # no weights: the check comes first
    model.options = LlamaOptions()
    tool = ToolSpec("f", "", nested_schema(MAX_SCHEMA_DEPTH))
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}], tools=(tool,), tool_choice="f")
    with pytest.raises(EngineError) as info:
        list(model.chat(request, threading.Event()))
    assert info.value.code == "invalid_tool_schema"
    assert info.value.message == f"the parameters of f nest more than {MAX_SCHEMA_DEPTH} levels deep"


async def test_over_the_runtime_each_hostile_frame_is_an_error_and_the_session_answers_after() -> None:
    from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber
    from openrealtime.runtime.engines import EngineSet
    from tests.runtime.test_connection import MemoryTransport, start_realtime

    engines = EngineSet(
        vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="x", chat=FakeChatModel("Hello.")
    )
    try:
        transport = MemoryTransport()
        task = start_realtime(engines, transport)
        for frame in (deep_arrays(1_000), deep_tool(400), big_integer(5_000)):
            transport.incoming.put_nowait(frame)
        text_only = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
        transport.incoming.put_nowait(json.dumps(text_only))
        transport.incoming.put_nowait(json.dumps({"type": "conversation.item.create", "item": USER_HI}))
        transport.incoming.put_nowait(json.dumps({"type": "response.create"}))
        done = await transport.wait_for("response.done")
        assert done["response"]["status"] == "completed"
        errors = [e["error"] for e in transport.sent if e["type"] == "error"]
        assert [(e["code"], e["param"]) for e in errors] == [
            ("invalid_json", None),
            ("invalid_value", "session.tools[0].parameters"),
            ("invalid_json", None),
        ]
        assert transport.closed is None
        transport.incoming.put_nowait(None)
        async with asyncio.timeout(TIMEOUT_S):
            await task
    finally:
        engines.close()
