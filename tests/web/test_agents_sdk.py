"""OpenAI's own browser SDK against the server: ``@openai/agents-realtime`` 0.20.0 (pinned in
``tests/web/agents_sdk/package-lock.json``), unmodified, its UMD bundle loaded by a page in headless
Chromium. Its ``OpenAIRealtimeWebRTC`` transport opens a call with an ephemeral key minted with the
server's key, and a ``RealtimeSession`` with one tool holds a voice turn: the spoken question on the
fake microphone, a tool call the SDK runs in the page and answers, then the spoken answer built on
the tool's result, played on the call's track.

The bundle comes from ``npm ci --prefix tests/web/agents_sdk`` (``./run setup`` does it when npm is
installed); without it, or without Chromium, the test is skipped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrealtime.client.audio_io import read_wav
from openrealtime.contracts import ChatChunk, ChatDone, ChatRequest, TextDelta, ToolCallDelta
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.web.browser import browser_page, microphone_wav, until

SDK = Path(__file__).parent / "agents_sdk"
BUNDLE = SDK / "node_modules" / "@openai" / "agents-realtime" / "dist" / "bundle" / "openai-realtime-agents.umd.js"
SAMPLES = Path(__file__).parents[2] / "src" / "openrealtime" / "samples"
KEY = "sk-agents-sdk-test"
TEST_PAGE = "/agents-sdk-test/"
TOOL_RESULT = "sunny and 21 degrees"

# The page: the stock bundle, then the SDK used as its README shows (a RealtimeAgent with one tool,
# a RealtimeSession over OpenAIRealtimeWebRTC pointed at this server's calls endpoint).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<script src="openai-realtime-agents.umd.js"></script>
<script>
window.log = { events: [], tools: [], history: [], errors: [] };
window.start = async (token) => {
  const { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebRTC, tool } = OpenAIAgentsRealtime;
  const weather = tool({
    name: "get_weather",
    description: "The weather in a city.",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
    strict: true,
    execute: async ({ city }) => {
      window.log.tools.push(city);
      return "__TOOL_RESULT__";
    },
  });
  const agent = new RealtimeAgent({ name: "Assistant", instructions: "Be brief.", tools: [weather] });
  const transport = new OpenAIRealtimeWebRTC({ baseUrl: location.origin + "/v1/realtime/calls" });
  const session = new RealtimeSession(agent, {
    transport,
    model: "gpt-realtime",
    config: { audio: { input: { turnDetection: { type: "server_vad" } } } },
  });
  session.on("transport_event", (event) => window.log.events.push(event.type));
  session.on("error", (error) => window.log.errors.push(String(error.error ?? error)));
  session.on("history_updated", (history) => {
    window.log.history = history
      .filter((item) => item.type === "message")
      .map((item) => ({
        role: item.role,
        text: item.content.map((part) => part.transcript ?? part.text ?? "").join(""),
      }));
  });
  await session.connect({ apiKey: token });
  window.session = session;
  return transport.callId ?? null;
};
</script></head><body></body></html>
""".replace("__TOOL_RESULT__", TOOL_RESULT)


class WeatherModel:
    """Calls ``get_weather`` for Paris when it is offered and not yet answered, then answers with
    the tool's result (what a model does with one tool and a weather question)."""

    context_tokens = 4096

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        self.requests.append(request)
        results = [m for m in request.messages if m.get("role") == "tool"]
        if results:
            heard = TOOL_RESULT in str(results[-1].get("content"))
            yield TextDelta(f"It is {TOOL_RESULT} in Paris." if heard else "The tool did not answer.")
            yield ChatDone(finish_reason="stop", input_tokens=10, output_tokens=6)
        elif any(spec.name == "get_weather" for spec in request.tools):
            yield ToolCallDelta(index=0, name="get_weather", arguments=json.dumps({"city": "Paris"}))
            yield ChatDone(finish_reason="tool_calls", input_tokens=10, output_tokens=2)
        else:
            yield TextDelta("I have no tools.")
            yield ChatDone(finish_reason="stop", input_tokens=10, output_tokens=4)


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=WeatherModel(),
        synthesizers={"en": voice, "*": voice},
    )
    yield engines
    engines.close()


@pytest.fixture
async def base(engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        yield url.replace("ws://", "http://")


async def serve_test_page(page: Any, base: str) -> None:
    """The SDK's page and bundle, answered by the browser itself (no route on the server), on the
    server's origin so that the SDK's fetch of the calls endpoint is same-origin."""
    bundle = BUNDLE.read_bytes()

    async def fulfil(route: Any) -> None:
        if route.request.url.endswith(".js"):
            await route.fulfill(body=bundle, content_type="text/javascript")
        else:
            await route.fulfill(body=PAGE, content_type="text/html")

    await page.route(f"{base}{TEST_PAGE}**", fulfil)


async def test_openais_browser_sdk_holds_a_voice_turn_with_a_tool_call(
    base: str, engines: EngineSet, tmp_path: Path
) -> None:
    if not BUNDLE.exists():
        pytest.skip("@openai/agents-realtime is not installed: npm ci --prefix tests/web/agents_sdk")
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_S) as http:
        minted = await http.post(
            "/v1/realtime/client_secrets",
            json={"session": {"type": "realtime", "model": "gpt-realtime"}},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    token = minted.json()["value"]
    mic = microphone_wav(tmp_path / "question.wav", read_wav(SAMPLES / "question.wav"), 24_000)
    async with browser_page(mic) as (page, errors):
        await serve_test_page(page, base)
        await page.goto(base + TEST_PAGE)
        call_id = await page.evaluate("(token) => window.start(token)", token)
        await until(page, "window.log.events.filter((t) => t === 'response.done').length >= 2", timeout_s=TIMEOUT_S)
        await until(page, "window.log.events.includes('output_audio_buffer.stopped')", timeout_s=TIMEOUT_S)
        log = await page.evaluate("window.log")
        await page.evaluate("window.session.close()")
    assert call_id is not None
    assert call_id.startswith("rtc_")
    assert log["tools"] == ["Paris"]  # the SDK ran the tool the server's model called
    assert log["errors"] == []
    assert {"role": "assistant", "text": f"It is {TOOL_RESULT} in Paris."} in log["history"]
    assert "output_audio_buffer.started" in log["events"]
    assert "response.output_audio.delta" not in log["events"]
    chat: WeatherModel = engines.chat  # type: ignore[assignment]
    tool_messages = [m for m in chat.requests[-1].messages if m.get("role") == "tool"]
    assert TOOL_RESULT in tool_messages[-1]["content"]
    assert errors == []
