"""MCP tools with the real models (SmolLM2 and piper): the official SDK asks, the server lists and
calls a real MCP server on loopback, and the small model answers with the tool's result, spoken.

``tool_choice: "required"`` makes the model call the tool (its first round only): with ``"auto"`` the
bundled SmolLM2 seldom calls a tool on its own, so no test relies on that.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.bench.speech import silence, speak
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm
from tests.mcp_server import running_mcp_server

pytestmark = pytest.mark.real


async def until(conn: Any, kind: str) -> list[Any]:
    events: list[Any] = []
    async with asyncio.timeout(TIMEOUT_S * 3):
        while True:
            events.append(await conn.recv())
            if events[-1].type == kind:
                return events


async def test_the_model_calls_the_mcp_tool_and_speaks_its_result(real_engines: EngineSet) -> None:
    async with running_mcp_server() as (mcp_url, _), running_server(Settings(port=0), engines=real_engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            tool = {
                "type": "mcp",
                "server_label": "weather",
                "server_url": mcp_url,
                "allowed_tools": ["get_weather"],
                "require_approval": "never",
            }
            await conn.session.update(session={"type": "realtime", "tools": [tool], "tool_choice": "required"})
            await until(conn, "mcp_list_tools.completed")
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is the weather in Oslo?"}],
            }
            await conn.conversation.item.create(item=item)
            await conn.response.create()
            events = await until(conn, "response.done")
    done = events[-1].response
    assert done.status == "completed", done.status_details
    call, message = done.output
    assert call.type == "mcp_call"
    assert isinstance(json.loads(call.arguments), dict)
    assert call.output.startswith("Sunny in ")
    answer = message.content[0].transcript.lower()
    assert "sunny" in answer or "21" in answer, answer  # the answer is built on the tool's result
    assert any(e.type == "response.output_audio.delta" for e in events)


async def test_a_spoken_question_is_answered_with_the_mcp_tools_result(real_engines: EngineSet) -> None:
    """A voice turn: heard, answered in its pause (speculatively) with the MCP call made after the
    commit, and the spoken answer built on the tool's result."""
    async with running_mcp_server() as (mcp_url, _), running_server(Settings(port=0), engines=real_engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            tool = {"type": "mcp", "server_label": "weather", "server_url": mcp_url, "require_approval": "never"}
            vad = {"type": "server_vad", "silence_duration_ms": 400}
            session = {"type": "realtime", "tools": [tool], "tool_choice": "required"}
            await conn.session.update(session={**session, "audio": {"input": {"turn_detection": vad}}})
            await until(conn, "mcp_list_tools.completed")
            audio = np.concatenate([silence(300), speak("What is the weather in Paris?"), silence(1500)])
            for i in range(0, audio.size, 2400):
                chunk = base64.b64encode(pcm(audio[i : i + 2400])).decode()
                await conn.input_audio_buffer.append(audio=chunk)
                await asyncio.sleep(0.01)
            events = await until(conn, "response.done")
    done = events[-1].response
    assert done.status == "completed", done.status_details
    assert [o.type for o in done.output] == ["mcp_call", "message"]
    assert done.output[0].output.startswith("Sunny in ")
    answer = done.output[1].content[0].transcript.lower()
    assert "sunny" in answer or "21" in answer, answer
