"""MCP tools end to end: the official ``openai`` SDK's realtime client against our server, which lists
and calls the tools of a real MCP server on loopback (the ``mcp`` SDK's own), with fake engines (the
fake LLM calls the tool it is made to: ``tool_choice``). The real models: ``test_mcp_real.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.mcp_server import Guard, closed_port_url, running_mcp_server

TOKEN = "mcp-token"


@pytest.fixture
async def mcp() -> AsyncIterator[tuple[str, Guard]]:
    async with running_mcp_server(token=TOKEN) as served:
        yield served


@pytest.fixture
async def conn() -> AsyncIterator[Any]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("It is sunny in Paris."),
        synthesizers={"*": ToneSynthesizer()},
    )
    try:
        async with running_server(Settings(port=0), engines=engines) as url:
            client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
            async with client.realtime.connect(model="gpt-realtime") as connection:
                assert (await connection.recv()).type == "session.created"
                yield connection
    finally:
        engines.close()


async def until(conn: Any, kind: str) -> list[Any]:
    events: list[Any] = []
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            events.append(await conn.recv())
            if events[-1].type == kind:
                return events


def weather(url: str, **fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "weather", "server_url": url, "authorization": TOKEN, **fields}


async def ask(conn: Any, text: str = "What is the weather in Paris?") -> list[Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await conn.conversation.item.create(item=item)
    await conn.response.create()
    return await until(conn, "response.done")


async def test_the_server_lists_and_calls_the_tool_and_the_model_answers_with_its_result(
    conn: Any, mcp: tuple[str, Guard]
) -> None:
    url, guard = mcp
    tool = weather(url, require_approval="never", headers={"X-Team": "voice"}, allowed_tools=["get_weather"])
    await conn.session.update(session={"type": "realtime", "tools": [tool], "tool_choice": "required"})
    events = await until(conn, "mcp_list_tools.completed")
    listed = (await until(conn, "conversation.item.done"))[-1].item
    assert listed.type == "mcp_list_tools"
    assert [t.name for t in listed.tools] == ["get_weather"]
    assert events[-1].item_id == listed.id
    events = await ask(conn)
    kinds = [e.type for e in events]
    assert "response.mcp_call_arguments.done" in kinds
    assert kinds.index("response.mcp_call.in_progress") < kinds.index("response.mcp_call.completed")
    done = events[-1].response
    assert done.status == "completed"
    call, message = done.output
    assert call.type == "mcp_call"
    assert call.output == "Sunny in Paris, 21 degrees."
    assert message.type == "message"
    assert message.content[0].transcript == "It is sunny in Paris."
    assert all(h["authorization"] == f"Bearer {TOKEN}" and h["x-team"] == "voice" for h in guard.headers)


async def test_an_approval_round_trip_through_the_sdk(conn: Any, mcp: tuple[str, Guard]) -> None:
    url, _ = mcp
    await conn.session.update(
        session={"type": "realtime", "tools": [weather(url)], "tool_choice": "required", "output_modalities": ["text"]}
    )
    await until(conn, "mcp_list_tools.completed")
    events = await ask(conn)
    [request] = [o for o in events[-1].response.output if o.type == "mcp_approval_request"]
    assert request.name == "get_weather"
    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    await conn.conversation.item.create(item=approval)
    await conn.response.create()
    done = (await until(conn, "response.done"))[-1].response
    assert [o.type for o in done.output] == ["mcp_call", "message"]
    assert done.output[0].approval_request_id == request.id
    assert done.output[0].output == "Sunny in Paris, 21 degrees."


async def test_unreachable_or_failing_servers_fail_and_the_session_goes_on(conn: Any, mcp: tuple[str, Guard]) -> None:
    await conn.session.update(session={"type": "realtime", "tools": [weather(closed_port_url())]})
    assert (await until(conn, "mcp_list_tools.failed"))[-1].item_id
    url, _ = mcp
    failing = weather(url, server_label="station", require_approval="never", allowed_tools=["fail"])
    await conn.session.update(session={"type": "realtime", "tools": [failing], "tool_choice": "required"})
    await until(conn, "mcp_list_tools.completed")
    events = await ask(conn)
    assert "response.mcp_call.failed" in [e.type for e in events]
    call = events[-1].response.output[0]
    assert call.error.type == "tool_execution_error"
    assert events[-1].response.status == "completed"
