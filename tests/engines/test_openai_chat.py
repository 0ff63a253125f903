"""OpenAI-compatible chat over SSE, against a tiny fake endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openrealtime.contracts import ChatDone, ChatRequest, TextDelta, ToolCallDelta, ToolSpec
from openrealtime.engines.openai_chat import (
    OpenAIChatOptions,
    OpenAICompatibleChatModel,
    _sse_data,
    chat_message,
)
from openrealtime.exceptions import EngineError
from tests.conftest import TIMEOUT_S

WEATHER = ToolSpec(
    "get_weather",
    "Get the weather.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
HELLO = ChatRequest(messages=[{"role": "user", "content": "Hi"}])


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": choices, **extra}


def sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


@dataclass
class Endpoint:
    """What the fake endpoint answers next, and what it was sent."""

    status: int = 200
    events: list[bytes] = field(default_factory=list)
    pause_s: float = 0.0
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    models: list[OpenAICompatibleChatModel] = field(default_factory=list)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append((self.path, dict(self.headers), body))
            self.send_response(state.status)
            content_type = "text/event-stream" if state.status == 200 else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for event in state.events:
                    self.wfile.write(event)
                    self.wfile.flush()
                    time.sleep(state.pause_s)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        for model in state.models:
            model.close()
        server.shutdown()
        server.server_close()
        thread.join()


def model_for(endpoint: Endpoint, **options: Any) -> OpenAICompatibleChatModel:
    model = OpenAICompatibleChatModel(OpenAIChatOptions(base_url=endpoint.url, model="tiny", **options))
    endpoint.models.append(model)
    return model


def collect(model: OpenAICompatibleChatModel, request: ChatRequest, stop: threading.Event | None = None) -> list[Any]:
    return list(model.chat(request, stop or threading.Event()))


def test_text_stream_and_usage(endpoint: Endpoint) -> None:
    endpoint.events = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": " there."}),
        chunk({}, finish="stop"),
        chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}),
        "[DONE]",
    )
    model = model_for(endpoint, api_key="sk-test")
    out = collect(model, ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=20, temperature=0.3))
    assert out == [TextDelta("Hello"), TextDelta(" there."), ChatDone("stop", 9, 3)]
    path, headers, body = endpoint.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "temperature": 0.3,
        "stream_options": {"include_usage": True},
        "max_tokens": 20,
    }


def test_tool_call_deltas_name_only_first(endpoint: Endpoint) -> None:
    call = {"index": 0, "id": "call_1", "type": "function"}
    endpoint.events = sse(
        chunk({"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '"Paris"}'}}]}),
        chunk({}, finish="tool_calls"),
        "[DONE]",
    )
    request = ChatRequest(messages=HELLO.messages, tools=(WEATHER,), tool_choice="get_weather")
    out = collect(model_for(endpoint), request)
    assert out == [
        ToolCallDelta(0, "get_weather", ""),
        ToolCallDelta(0, None, '{"city": '),
        ToolCallDelta(0, None, '"Paris"}'),
        ChatDone("tool_calls", 0, 0),
    ]
    arguments = json.loads("".join(c.arguments for c in out if isinstance(c, ToolCallDelta)))
    assert arguments == {"city": "Paris"}
    body = endpoint.requests[0][2]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", **_described(WEATHER)}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def _described(tool: ToolSpec) -> dict[str, Any]:
    return {"description": tool.description, "parameters": dict(tool.parameters)}


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_keywords_pass_through(endpoint: Endpoint, choice: str) -> None:
    endpoint.events = sse(chunk({"content": "ok"}, finish="stop"), "[DONE]")
    collect(model_for(endpoint), ChatRequest(messages=HELLO.messages, tools=(WEATHER,), tool_choice=choice))
    assert endpoint.requests[0][2]["tool_choice"] == choice


def test_options_shape_the_body(endpoint: Endpoint) -> None:
    endpoint.events = sse(chunk({"content": "ok"}, finish="stop"), "[DONE]")
    model = model_for(endpoint, include_usage=False, max_tokens_field="max_completion_tokens", extra_body={"seed": 7})
    collect(model, ChatRequest(messages=HELLO.messages, max_tokens=5))
    body = endpoint.requests[0][2]
    assert "stream_options" not in body
    assert body["max_completion_tokens"] == 5
    assert body["seed"] == 7
    assert "tools" not in body
    assert "tool_choice" not in body


def test_http_error_carries_the_endpoint_message(endpoint: Endpoint) -> None:
    endpoint.status = 401
    endpoint.events = [json.dumps({"error": {"message": "Incorrect API key provided"}}).encode()]
    with pytest.raises(EngineError, match="HTTP 401: Incorrect API key provided") as info:
        collect(model_for(endpoint), HELLO)
    assert info.value.code == "llm_http_401"


def test_a_stream_cut_short_is_an_error(endpoint: Endpoint) -> None:
    endpoint.events = sse(chunk({"content": "Hel"}))
    with pytest.raises(EngineError, match="ended before"):
        collect(model_for(endpoint), HELLO)


def test_malformed_event_is_an_error(endpoint: Endpoint) -> None:
    endpoint.events = [b"data: {not json\n\n"]
    with pytest.raises(EngineError) as info:
        collect(model_for(endpoint), HELLO)
    assert info.value.code == "llm_bad_response"


def test_finish_without_done_is_accepted(endpoint: Endpoint) -> None:
    endpoint.events = sse(chunk({"content": "Hi"}, finish="length"))
    assert collect(model_for(endpoint), HELLO) == [TextDelta("Hi"), ChatDone("length", 0, 0)]


def test_stop_closes_the_stream(endpoint: Endpoint) -> None:
    endpoint.events = sse(*[chunk({"content": f"w{i} "}) for i in range(50)], chunk({}, finish="stop"), "[DONE]")
    endpoint.pause_s = 0.02
    stop = threading.Event()
    received = []
    started = time.monotonic()
    for item in model_for(endpoint).chat(HELLO, stop):
        received.append(item)
        if len(received) == 2:
            stop.set()
    assert time.monotonic() - started < TIMEOUT_S / 2
    assert received[:2] == [TextDelta("w0 "), TextDelta("w1 ")]
    assert received[-1] == ChatDone("cancelled", 0, 0)
    assert len(received) == 3


def test_unreachable_endpoint_is_an_engine_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAICompatibleChatModel(OpenAIChatOptions(base_url=f"http://127.0.0.1:{port}/v1", model="m"))
    with pytest.raises(EngineError) as info:
        collect(model, HELLO)
    assert info.value.code == "llm_unavailable"
    model.close()


def test_count_tokens_is_an_estimate() -> None:
    model = OpenAICompatibleChatModel(OpenAIChatOptions(base_url="http://127.0.0.1:1/v1", model="m"))
    assert model.count_tokens("") == 0
    assert model.count_tokens("abcd") == 1
    assert model.count_tokens("abcde") == 2
    assert model.context_tokens == 8192
    model.close()


def test_sse_parsing() -> None:
    lines = [
        ": keep-alive",
        "event: message",
        "data: one",
        "data: two",
        "",
        "id: 3",
        "data:three",
        "",
        "data: tail",
    ]
    assert list(_sse_data(iter(lines))) == ["one\ntwo", "three", "tail"]


def test_realtime_content_parts_become_chat_parts() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Hi "},
            {"type": "input_audio", "transcript": "there"},
            {"type": "image_url", "image_url": {"url": "data:,"}},
        ],
    }
    assert chat_message(message)["content"] == [
        {"type": "text", "text": "Hi "},
        {"type": "text", "text": "there"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
    ]
    assert chat_message({"role": "assistant", "content": None, "tool_calls": []}) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [],
    }


async def test_an_image_item_reaches_a_vision_endpoint_through_the_server(endpoint: Endpoint) -> None:
    """Issue 12: an ``input_image`` the official SDK sends reaches a ``--llm-vision`` endpoint as an
    ``image_url`` part (it used to become the text "[image]")."""
    from openai import AsyncOpenAI

    from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
    from openrealtime.runtime.engines import EngineSet
    from openrealtime.server.embedded import running_server
    from openrealtime.server.settings import Settings

    endpoint.events = sse(chunk({"content": "A red square."}), chunk({}, finish="stop"), "[DONE]")
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="x",
        chat=model_for(endpoint, vision=True),
        synthesizers={"*": ToneSynthesizer()},
    )
    image = (  # one red pixel
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    try:
        async with running_server(Settings(port=0), engines=engines) as url:
            client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
                content = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": image}]
                await conn.conversation.item.create(item={"type": "message", "role": "user", "content": content})
                await conn.response.create()
                async for event in conn:
                    if event.type == "response.done":
                        assert event.response.status == "completed"
                        break
    finally:
        engines.close()
    _, _, body = endpoint.requests[-1]
    [user] = [m for m in body["messages"] if m["role"] == "user"]
    assert user["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": image, "detail": "auto"}},
    ]
