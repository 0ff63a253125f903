"""llama.cpp chat: prompts and routing (pure), then SmolLM2 streaming, stop, usage and tool calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from openrealtime.contracts import ChatDone, ChatRequest, TextDelta, ToolCallDelta, ToolSpec
from openrealtime.engines.chat_prompts import (
    arguments_messages,
    describe_parameters,
    normalize_messages,
    router_messages,
)
from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions
from openrealtime.engines.tool_routing import choice_grammar, lexical_scores
from openrealtime.exceptions import EngineError

WEATHER = ToolSpec(
    "get_weather",
    "Get the current weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)
LIGHTS = ToolSpec(
    "set_lights",
    "Turn the lights of a room on or off.",
    {
        "type": "object",
        "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
        "required": ["room", "on"],
        "additionalProperties": False,
    },
)
ALARM = ToolSpec(
    "create_alarm",
    "Create an alarm.",
    {
        "type": "object",
        "properties": {
            "hour": {"type": "integer", "minimum": 0, "maximum": 23},
            "minute": {"type": "integer"},
            "label": {"type": "string"},
            "days": {
                "type": "array",
                "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri"]},
            },
            "sound": {
                "type": "object",
                "properties": {"volume": {"type": "number"}, "vibrate": {"type": "boolean"}},
                "required": ["volume"],
            },
        },
        "required": ["hour", "minute", "days", "sound"],
    },
)
SYSTEM = {"role": "system", "content": "You are a helpful voice assistant. Answer in one short sentence."}


def ask(text: str, **request: Any) -> ChatRequest:
    return ChatRequest(messages=[SYSTEM, {"role": "user", "content": text}], **request)


def check(schema: Mapping[str, Any], value: Any, path: str = "$") -> None:
    """A small JSON Schema check: type, enum, required, properties, additionalProperties, items, bounds."""
    kind = schema.get("type")
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "number": (int, float),
        "integer": int,
    }
    if kind is not None:
        assert isinstance(value, types[kind]), f"{path}: {value!r} is not {kind}"
        if kind in ("integer", "number"):
            assert not isinstance(value, bool), f"{path}: a boolean is not a {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if "minimum" in schema:
        assert value >= schema["minimum"], path
    if "maximum" in schema:
        assert value <= schema["maximum"], path
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            assert name in value, f"{path}: missing {name}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(properties), f"{path}: extra keys {set(value) - set(properties)}"
        for name, sub in properties.items():
            if name in value:
                check(sub, value[name], f"{path}.{name}")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            check(schema["items"], item, f"{path}[{i}]")


# --- pure ------------------------------------------------------------------------------------------


def test_normalize_messages_for_any_template() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Speak English."},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "Weather "}, {"type": "text", "text": "in Rome?"}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": [{"type": "output_text", "text": "It is 21 degrees."}]},
    ]
    assert normalize_messages(messages) == [
        {"role": "system", "content": "Be brief.\n\nSpeak English."},
        # The call is not shown; its result is data the user's turn carries (SmolLM2 read brackets aloud).
        {"role": "user", "content": 'Weather in Rome?\n\n(Result of get_weather, for your answer: {"temp": 21})'},
        {"role": "assistant", "content": "It is 21 degrees."},
    ]
    after_words = [
        {"role": "user", "content": "Lights off"},
        {"role": "assistant", "content": "Sure.", "tool_calls": [{"id": "c2", "function": {"name": "set_lights"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
    ]
    assert normalize_messages(after_words)[1:] == [  # words before the call stay; the result follows them
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "(Result of set_lights, for your answer: ok)"},
    ]


def test_router_and_argument_prompts() -> None:
    routed = router_messages(ask("Lights off").messages, [WEATHER, LIGHTS], allow_answer=True)
    assert routed[:2] == normalize_messages(ask("Lights off").messages)
    assert "get_weather: Get the current weather" in routed[-1]["content"]
    assert routed[-1]["content"].endswith("Reply with one word: get_weather, set_lights, answer.")
    forced = router_messages(ask("x").messages, [WEATHER, LIGHTS], allow_answer=False)
    assert "answer" not in forced[-1]["content"]
    arguments = arguments_messages(ask("Lights off in the hall").messages, LIGHTS)
    assert arguments[0]["role"] == "system"
    assert "set_lights" in arguments[0]["content"]
    assert "room (string), on (boolean)" in arguments[0]["content"]
    assert arguments[1:] == [{"role": "user", "content": "Lights off in the hall"}]  # persona dropped


def test_describe_parameters() -> None:
    assert describe_parameters(WEATHER.parameters) == "city (string), unit (string: one of celsius/fahrenheit)"
    schema = {"properties": {"q": {"type": "string", "description": "query"}}}
    assert describe_parameters(schema) == "q (string; query, optional)"
    assert describe_parameters({}) == "none"


@pytest.mark.parametrize(
    ("text", "scores"),
    [
        ("What's the weather in Paris?", [1, 0]),
        ("Turn off the lights in the bedroom.", [0, 3]),
        ("Switch on the kitchen light.", [0, 1]),
        ("How are you today?", [0, 0]),
        ("Tell me a joke about cats.", [0, 0]),
        ("Could you get me the weather and set the lights?", [1, 1]),
    ],
)
def test_lexical_scores(text: str, scores: list[int]) -> None:
    assert lexical_scores(ask(text).messages, [WEATHER, LIGHTS]) == scores


def test_lexical_scores_read_the_last_user_message_and_the_schema() -> None:
    messages = [
        {"role": "user", "content": "weather please"},
        {"role": "assistant", "content": "Where?"},
        {"role": "user", "content": "in fahrenheit"},
    ]
    assert lexical_scores(messages, [WEATHER, LIGHTS]) == [1, 0]  # "fahrenheit" is an enum value
    assert lexical_scores([], [WEATHER]) == [0]


def test_choice_grammar() -> None:
    assert choice_grammar(["get_weather", "answer"]) == 'root ::= "get_weather" | "answer"\n'


# --- SmolLM2 ---------------------------------------------------------------------------------------

real = pytest.mark.real


@pytest.fixture(scope="module")
def llm() -> LlamaChatModel:
    return LlamaChatModel()


def run(model: LlamaChatModel, request: ChatRequest, stop: threading.Event | None = None) -> list[Any]:
    chunks = list(model.chat(request, stop or threading.Event()))
    assert sum(isinstance(c, ChatDone) for c in chunks) == 1
    assert isinstance(chunks[-1], ChatDone)
    return chunks


def tool_call(chunks: list[Any]) -> tuple[str, Any]:
    calls = [c for c in chunks if isinstance(c, ToolCallDelta)]
    assert calls, chunks
    assert calls[0].name is not None
    assert all(c.name is None and c.index == 0 for c in calls[1:])
    assert not any(isinstance(c, TextDelta) for c in chunks)
    assert chunks[-1].finish_reason == "tool_calls"
    return calls[0].name, json.loads("".join(c.arguments for c in calls))


@real
def test_text_streams_with_usage(llm: LlamaChatModel) -> None:
    chunks = run(llm, ask("What is the capital of France?", max_tokens=40))
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    done = chunks[-1]
    assert "Paris" in text
    assert len(chunks) > 3  # streamed, not one blob
    assert done.finish_reason == "stop"
    assert 0 < done.output_tokens <= 40
    assert done.input_tokens > llm.count_tokens("What is the capital of France?")
    assert llm.context_tokens == 2048
    assert llm.count_tokens("Hello world") == 2


@real
@pytest.mark.parametrize(
    ("question", "name", "result"),
    [
        ("What time is it in Tokyo?", "get_time", "14:05"),
        ("Is my order shipped?", "order_status", '{"status": "shipped", "carrier": "DHL", "eta": "Friday"}'),
    ],
)
def test_a_tool_result_is_answered_from_not_read_out(
    llm: LlamaChatModel, question: str, name: str, result: str
) -> None:
    """Issue 12: a plain result was read aloud as "[result of get_weather: ...]"."""
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    messages = [
        {"role": "system", "content": "You are a helpful voice assistant. Be brief."},
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": result},
    ]
    chunks = run(llm, ChatRequest(messages=messages, max_tokens=40))
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    assert text.strip(), chunks
    assert "[" not in text, text
    assert "result of" not in text.lower(), text


@real
def test_max_tokens_cuts_with_length(llm: LlamaChatModel) -> None:
    done = run(llm, ask("Tell me a long story about a dragon.", max_tokens=5))[-1]
    assert done == ChatDone("length", done.input_tokens, 5)


@real
def test_stop_between_tokens(llm: LlamaChatModel) -> None:
    stop = threading.Event()
    chunks = []
    for chunk in llm.chat(ask("Tell me a long story about a dragon.", max_tokens=200), stop):
        chunks.append(chunk)
        if len(chunks) == 3:
            stop.set()
    assert len(chunks) == 4
    assert chunks[-1].finish_reason == "cancelled"
    assert chunks[-1].output_tokens <= 4


@real
@pytest.mark.parametrize(
    ("text", "tool", "expected"),
    [
        ("What's the weather like in Tokyo in fahrenheit?", WEATHER, {"city": "Tokyo", "unit": "fahrenheit"}),
        ("Turn on the kitchen lights please.", LIGHTS, {"room": "kitchen", "on": True}),
    ],
)
def test_forced_tool_arguments_are_valid_and_right(
    llm: LlamaChatModel, text: str, tool: ToolSpec, expected: dict[str, Any]
) -> None:
    name, arguments = tool_call(run(llm, ask(text, tools=(WEATHER, LIGHTS), tool_choice=tool.name)))
    assert name == tool.name
    check(tool.parameters, arguments)
    assert arguments == expected


@real
def test_arguments_follow_a_rich_schema_even_when_the_request_does_not_fit(llm: LlamaChatModel) -> None:
    request = ask("What's the capital of Peru?", tools=(ALARM,), tool_choice="required")
    name, arguments = tool_call(run(llm, request))
    assert name == "create_alarm"
    check(ALARM.parameters, arguments)


@real
def test_required_picks_the_tool_the_words_name(llm: LlamaChatModel) -> None:
    name, arguments = tool_call(
        run(llm, ask("Turn off the lights in the bedroom.", tools=(WEATHER, LIGHTS), tool_choice="required"))
    )
    assert name == "set_lights"
    check(LIGHTS.parameters, arguments)


@real
def test_auto_answers_chat_and_calls_named_tools(llm: LlamaChatModel) -> None:
    tools = (WEATHER, LIGHTS)
    chunks = run(llm, ask("Tell me a joke about cats.", tools=tools, max_tokens=30))
    assert any(isinstance(c, TextDelta) for c in chunks)
    assert not any(isinstance(c, ToolCallDelta) for c in chunks)
    name, arguments = tool_call(run(llm, ask("What's the weather in Paris?", tools=tools)))
    assert name == "get_weather"
    assert arguments["city"] == "Paris"
    check(WEATHER.parameters, arguments)
    assert llm.choose_tool(ask("Lights on in the hall", tools=tools)) == LIGHTS
    assert llm.choose_tool(ask("Lights on in the hall", tools=tools, tool_choice="none")) is None
    # After the tool's result comes back, "auto" answers with it instead of calling the tool again.
    after_result = ChatRequest(
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        ],
        tools=tools,
    )
    assert llm.choose_tool(after_result) is None


@real
def test_router_strategy_always_returns_a_valid_choice() -> None:
    model = LlamaChatModel(LlamaOptions(auto_tools="router", n_ctx=1024))
    for text in ("How are you?", "Weather in Oslo?", "Lights off."):
        assert model.choose_tool(ask(text, tools=(WEATHER, LIGHTS))) in (WEATHER, LIGHTS, None)
        assert model.choose_tool(ask(text, tools=(WEATHER, LIGHTS), tool_choice="required")) in (
            WEATHER,
            LIGHTS,
        )
    answer_only = LlamaChatModel(LlamaOptions(auto_tools="answer", n_ctx=512))
    assert answer_only.choose_tool(ask("What's the weather in Paris?", tools=(WEATHER,))) is None


@real
def test_errors(llm: LlamaChatModel) -> None:
    with pytest.raises(EngineError) as info:
        run(llm, ask("Hi", tools=(WEATHER,), tool_choice="no_such_tool"))
    assert info.value.code == "invalid_tool_choice"
    with pytest.raises(EngineError) as info:
        run(llm, ask("word " * 3000))
    assert info.value.code == "context_length_exceeded"


@real
def test_threads_answer_at_once(llm: LlamaChatModel) -> None:
    questions = ["Name a color.", "Name a fruit.", "Name an animal."]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda q: run(llm, ask(q, max_tokens=12)), questions))
    for chunks in results:
        assert chunks[-1].finish_reason in ("stop", "length")
        assert "".join(c.text for c in chunks if isinstance(c, TextDelta)).strip()
