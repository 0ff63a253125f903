"""The sideband of a call (``GET /v1/realtime?call_id=rtc_...``, reference 1.4) over loopback: an aiortc
caller, fake engines, and sidebands on plain WebSockets or the official SDK."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI

from openrealtime.runtime import fanout
from openrealtime.runtime.engines import EngineSet
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.webrtc.peer import RATE_HZ
from tests.webrtc.test_calls import KEY, engines, mint, peer, server

__all__ = ["engines"]  # the fixture, shared with the call tests

TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order.",
    "parameters": {"type": "object", "properties": {}},
}


def ws_base(http: Any) -> str:
    return str(http.base_url).rstrip("/").replace("http://", "ws://")


async def sideband(http: Any, call_id: str, key: str = KEY, **options: Any) -> websockets.ClientConnection:
    url = f"{ws_base(http)}/v1/realtime?call_id={call_id}"
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, **options)


async def next_event(ws: websockets.ClientConnection, *types: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event: dict[str, Any] = json.loads(await ws.recv())
            if event["type"] in types:
                return event


async def attached(ws: websockets.ClientConnection, instructions: str) -> dict[str, Any]:
    """Update the call's session from the sideband; its ``session.updated`` says it is attached."""
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": instructions}}))
    while (updated := await next_event(ws, "session.updated"))["session"]["instructions"] != instructions:
        pass  # another transport's update
    return updated


def call_id_of(reply: Any) -> str:
    return str(reply.headers["location"].rsplit("/", 1)[1])


async def test_the_sdk_on_the_sideband_sees_the_call_and_answers_its_tool_call(engines: EngineSet) -> None:
    session = {"type": "realtime", "model": "gpt-realtime", "tools": [TOOL], "tool_choice": "required"}
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY, shape="json", session=session)
        assert reply.status_code == 201, reply.text
        await client.next("session.created", timeout_s=TIMEOUT_S)
        sdk = AsyncOpenAI(
            api_key=KEY, base_url=str(http.base_url).rstrip("/") + "/v1", websocket_base_url=ws_base(http) + "/v1"
        )
        async with sdk.realtime.connect(call_id=call_id_of(reply)) as control:
            await control.session.update(session={"type": "realtime", "instructions": "From the server."})
            async with asyncio.timeout(TIMEOUT_S):
                updated = await anext(e async for e in control if e.type == "session.updated")
            assert updated.session.instructions == "From the server."  # type: ignore[union-attr]
            # ... and the caller sees the update it made
            seen = await client.next("session.updated", timeout_s=TIMEOUT_S)
            assert seen["session"]["instructions"] == "From the server."

            client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
            kinds: list[str] = []
            async with asyncio.timeout(TIMEOUT_S):
                async for event in control:
                    kinds.append(event.type)
                    if event.type == "response.done":
                        break
            assert event.type == "response.done"
            calls = [o for o in event.response.output or [] if o.type == "function_call"]
            assert [c.name for c in calls] == ["lookup_order"]
            assert "input_audio_buffer.speech_started" in kinds  # the caller's turn, seen from the server

            # The server answers the tool call, and asks for the answer.
            output = {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"status": "shipped"}'}
            await control.conversation.item.create(item=output)  # type: ignore[arg-type]
            await control.response.create(response={"tool_choice": "none"})
            async with asyncio.timeout(TIMEOUT_S):
                done = await anext(e async for e in control if e.type == "response.done")
            assert done.response.status == "completed"  # type: ignore[union-attr]
            # The caller gets the spoken answer; neither side gets audio deltas (OpenAI sends none).
            async with asyncio.timeout(TIMEOUT_S):
                while (await client.next("conversation.item.added", timeout_s=TIMEOUT_S))["item"]["type"] != (
                    "function_call_output"
                ):
                    pass
            await client.next("output_audio_buffer.started", timeout_s=TIMEOUT_S)
            assert "response.output_audio.delta" not in kinds
            assert "response.output_audio.delta" not in [e["type"] for e in client.seen]


async def test_a_client_secret_is_refused_on_the_sideband(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY)
        await client.next("session.created", timeout_s=TIMEOUT_S)
        secret = await mint(http)
        ws = await sideband(http, call_id_of(reply), key=secret)
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "invalid_api_key"
        assert "server's API key" in error["error"]["message"]
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 3000
        # The call is untouched.
        client.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Still here."}})
        await client.next("session.updated", timeout_s=TIMEOUT_S)


async def test_an_unknown_call_gets_an_error_and_4000(engines: EngineSet) -> None:
    async with server(engines) as http:
        ws = await sideband(http, "rtc_0123456789abcdef0123456789abcdef")
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "call_not_found"
        assert error["error"]["param"] == "call_id"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4000


async def test_sidebands_come_and_go_and_the_call_ending_closes_them(engines: EngineSet) -> None:
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY)
        await client.next("session.created", timeout_s=TIMEOUT_S)
        first = await sideband(http, call_id_of(reply))
        second = await sideband(http, call_id_of(reply))
        await attached(first, "One.")
        await attached(second, "Two.")
        await first.close()  # one leaves: the call and the other go on
        client.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Three."}})
        for said in ("One.", "Two.", "Three."):  # the caller saw both sidebands' updates, then its own
            assert (await client.next("session.updated", timeout_s=TIMEOUT_S))["session"]["instructions"] == said
        assert (await next_event(second, "session.updated"))["session"]["instructions"] == "Three."

        hangup = await http.post(reply.headers["location"] + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
        assert hangup.status_code == 200
        async with asyncio.timeout(TIMEOUT_S):
            await second.wait_closed()
        assert second.close_code == 1000
        late = await sideband(http, call_id_of(reply))  # the call is gone: nothing to attach to
        assert (await next_event(late, "error"))["error"]["code"] == "call_not_found"


ITEM_BYTES = 256 * 1024


def send_buffer_max_bytes() -> int:
    """How large the kernel lets a TCP send buffer grow (Linux; 4 MiB, its default, elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def _stuck_client(host: str, port: int, path: str) -> socket.socket:
    """A WebSocket client that upgrades and then reads nothing, with a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {KEY}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


async def test_a_sideband_that_does_not_read_is_dropped_and_the_call_goes_on(
    engines: EngineSet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fanout, "OUTBOX_LIMIT", 8)
    # Each item comes back twice (added, done): enough to fill the server's send buffer for the stuck
    # socket (it grows up to tcp_wmem's maximum), then its outbox of 8 events.
    items = (send_buffer_max_bytes() + 4 * ITEM_BYTES * 8) // (2 * ITEM_BYTES) + 1
    async with server(engines) as http, peer() as client:
        reply = await client.call(http, key=KEY)
        await client.next("session.created", timeout_s=TIMEOUT_S)
        url = http.base_url
        stuck = _stuck_client(url.host, url.port, f"/v1/realtime?call_id={call_id_of(reply)}")
        try:
            reader = await sideband(http, call_id_of(reply), max_size=None)
            await attached(reader, "Attached.")
            text = "x" * ITEM_BYTES
            for index in range(items):
                item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
                await reader.send(
                    json.dumps({"type": "conversation.item.create", "item": item, "event_id": f"e{index}"})
                )
            for _ in range(items):  # the call's own channel and the reading sideband get every event
                await client.next("conversation.item.done", timeout_s=TIMEOUT_S)
                await next_event(reader, "conversation.item.done")
            assert "a sideband is not reading the call's events; closing it with 1008" in caplog.text
            await attached(reader, "Still here.")
            assert (await client.next("session.updated", timeout_s=TIMEOUT_S))["session"][
                "instructions"
            ] == "Still here."
        finally:
            stuck.close()
