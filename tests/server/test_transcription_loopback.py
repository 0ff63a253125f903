"""The real server on 127.0.0.1, driven by the official ``openai`` SDK and by raw WebSockets.

These use fake engines (fast); ``test_transcription_real.py`` repeats the important ones with the
real models on synthesized speech.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm, quiet, tone


@pytest.fixture
async def base(fake_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=fake_engines) as url:
        yield url


async def recv_until(conn: Any, kind: str) -> list[Any]:
    seen = []
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event = await conn.recv()
            seen.append(event)
            if event.type == kind:
                return seen


# A transcription session with manual commits, as the tutorial's gpt-realtime-whisper client sets it.
MANUAL_TURNS = json.dumps(
    {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
        },
    }
)


async def completed_transcript(ws: Any) -> str:
    """Read events until the next ``...input_audio_transcription.completed``; its transcript."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                return str(event["transcript"])


def b64(samples: Any) -> str:
    return base64.b64encode(pcm(samples)).decode()


async def test_sdk_transcription_session_end_to_end(base: str) -> None:
    client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{base}/v1")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.type == "transcription"
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                    }
                },
            }
        )
        await recv_until(conn, "session.updated")
        for chunk in (quiet(300), tone(2600), quiet(900)):
            for i in range(0, chunk.size, 2400):
                await conn.input_audio_buffer.append(audio=b64(chunk[i : i + 2400]))
        events = await recv_until(conn, "conversation.item.input_audio_transcription.completed")
    kinds = [e.type for e in events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
    assert kinds.index("input_audio_buffer.committed") < kinds.index("conversation.item.added")
    deltas = [e.delta for e in events if e.type == "conversation.item.input_audio_transcription.delta"]
    assert "".join(deltas) == events[-1].transcript == "hello world this is a"
    assert all(e.event_id and e.event_id.startswith("event_") for e in events)
    assert events[-1].usage.type == "duration"


async def test_path_without_v1_prefix(base: str) -> None:
    async with websockets.connect(f"{base}/realtime?intent=transcription") as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"


async def raw_error(ws: Any, frame: str | bytes) -> dict[str, Any]:
    await ws.send(frame)
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "error":
                return event["error"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        (b"\x00\x01binary", "invalid_event"),
        (json.dumps({"type": "nope", "event_id": "e1"}), "invalid_value"),
        (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}), "invalid_value"),
        (json.dumps({"type": "input_audio_buffer.commit"}), "input_audio_buffer_commit_empty"),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                    },
                }
            ),
            "integer_below_min_value",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"transcription": {"model": "not-a-model"}}},
                    },
                }
            ),
            "invalid_value",
        ),
        (
            json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (16 * 1024 * 1024 * 4 // 3)}),
            "input_audio_buffer_append_too_large",
        ),
    ],
)
async def test_bad_input_gets_an_error_and_the_session_goes_on(base: str, frame: str | bytes, code: str) -> None:
    async with websockets.connect(f"{base}/v1/realtime?intent=transcription", max_size=None) as ws:
        await ws.recv()  # session.created
        error = await raw_error(ws, frame)
        assert error["code"] == code
        assert error["type"] == "invalid_request_error"
        # Still alive and still correct: a valid manual turn works afterwards.
        await ws.send(MANUAL_TURNS)
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(tone(1200))}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        assert await completed_transcript(ws) == "hello world"


async def test_concurrent_sessions_do_not_mix(base: str) -> None:
    async def one(ms: int) -> str:
        async with websockets.connect(f"{base}/v1/realtime?intent=transcription") as ws:
            await ws.recv()
            await ws.send(MANUAL_TURNS)
            for _i in range(0, ms, 100):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(tone(100))}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return await completed_transcript(ws)

    results = await asyncio.gather(one(600), one(1200), one(2200), one(3200))
    assert results == ["hello", "hello world", "hello world this is", "hello world this is a test"]


async def test_api_key_required_when_configured(fake_engines: EngineSet) -> None:
    async with running_server(Settings(port=0, api_key="sk-secret"), engines=fake_engines) as url:
        path = f"{url}/v1/realtime?intent=transcription"
        async with websockets.connect(path) as ws:
            event = json.loads(await ws.recv())
            assert event["type"] == "error"
            assert "Missing bearer" in event["error"]["message"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 3000
        async with websockets.connect(path, additional_headers={"Authorization": "Bearer sk-wrong"}) as ws:
            event = json.loads(await ws.recv())
            assert event["error"]["code"] == "invalid_api_key"
            assert "sk-wrong" not in event["error"]["message"]
        client = AsyncOpenAI(api_key="sk-secret", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            assert (await conn.recv()).type == "session.created"
        # Browsers: the key in a subprotocol next to "realtime", which the server selects.
        async with websockets.connect(path, subprotocols=["realtime", "openai-insecure-api-key.sk-secret"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "realtime"
            assert json.loads(await ws.recv())["type"] == "session.created"


async def test_connect_time_refusals_close_with_4000(base: str) -> None:
    for path, code in [("/v1/realtime", "missing_model"), ("/v1/realtime?intent=bogus", "invalid_intent")]:
        async with websockets.connect(base + path) as ws:
            event = json.loads(await ws.recv())
            assert event["error"]["code"] == code
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4000
    async with websockets.connect(
        f"{base}/v1/realtime?intent=transcription", additional_headers={"OpenAI-Beta": "realtime=v1"}
    ) as ws:
        assert json.loads(await ws.recv())["error"]["code"] == "beta_api_shape_disabled"


async def test_healthz(base: str) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.get(base.replace("ws://", "http://") + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_vanished_client_leaves_the_server_healthy(base: str, fake_engines: EngineSet) -> None:
    ws = await websockets.connect(f"{base}/v1/realtime?intent=transcription")
    await ws.recv()
    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(tone(1000))}))
    ws.transport.abort()  # no close frame: the client just vanishes
    async with websockets.connect(f"{base}/v1/realtime?intent=transcription") as ws2:
        assert json.loads(await ws2.recv())["type"] == "session.created"


async def test_metrics_expose_the_same_figures(base: str) -> None:
    import httpx

    async with websockets.connect(f"{base}/v1/realtime?intent=transcription") as ws:
        await ws.recv()
        await ws.send(MANUAL_TURNS)
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(tone(1200))}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await ws.send(json.dumps({"type": "nope"}))
        async with asyncio.timeout(TIMEOUT_S):
            while json.loads(await ws.recv())["type"] != "error":
                pass
        async with httpx.AsyncClient() as http:
            text = (await http.get(base.replace("ws://", "http://") + "/metrics")).text
    assert "openrealtime_transcription_finalization_seconds_count 1" in text
    assert 'openrealtime_sessions_total{kind="transcription"} 1' in text
    assert 'openrealtime_active_sessions{kind="transcription"} 1' in text
    assert "openrealtime_append_handling_seconds_count 1" in text
    assert 'openrealtime_errors_total{code="invalid_value"} 1' in text
    assert 'openrealtime_stage_latency_seconds_count{stage="asr_final"}' in text
