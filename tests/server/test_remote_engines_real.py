"""A front door with no speech model of its own: its ASR and voice are a second openrealtime on
loopback (real Whisper and piper there), driven by the official SDK through a spoken voice turn."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.bench.speech import silence, speak
from openrealtime.engines.remote_asr import RemoteTranscriber
from openrealtime.engines.remote_tts import RemoteSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server import registry
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm
from tests.server.test_realtime_real import transcribe_back

pytestmark = pytest.mark.real

CHUNK = 2400


@pytest.fixture
async def front_door(real_engines: EngineSet, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A session on a front door whose engines are loaded from settings, with ``asr_url`` and
    ``tts_url`` on an engine server; loading Whisper or piper there fails the test."""
    from openrealtime.engines import piper_tts, whisper

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the front door loaded a local speech model")

    monkeypatch.setattr(whisper, "WhisperTranscriber", refuse)
    monkeypatch.setattr(piper_tts, "PiperSynthesizer", refuse)
    # The LLM is not what this test is about: the front door shares the loaded one, not a second copy.
    monkeypatch.setattr(registry, "load_chat_model", lambda settings: real_engines.chat)
    loaded: list[EngineSet] = []

    def recorded(**fields: Any) -> EngineSet:
        loaded.append(EngineSet(**fields))
        return loaded[-1]

    monkeypatch.setattr(registry, "EngineSet", recorded)
    async with running_server(Settings(port=0), engines=real_engines) as engine_url:
        api = engine_url.replace("ws://", "http://") + "/v1"
        settings = Settings(port=0, asr_url=api, asr_model="tiny.en", tts_url=api)
        async with running_server(settings) as url:
            [engines] = loaded
            assert isinstance(engines.transcriber, RemoteTranscriber)
            assert isinstance(engines.synthesizer_for("en"), RemoteSynthesizer)
            client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
            async with client.realtime.connect(model="gpt-realtime") as connection:
                assert (await connection.recv()).type == "session.created"
                yield connection


async def stream(conn: Any, audio: np.ndarray) -> None:
    for i in range(0, audio.size, CHUNK):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
        await asyncio.sleep(0.01)


async def until(conn: Any, predicate: Any, events: list[Any]) -> list[Any]:
    async with asyncio.timeout(TIMEOUT_S * 3):
        while not any(predicate(e) for e in events):
            events.append(await conn.recv())
    return events


async def test_a_spoken_turn_through_a_remote_asr_and_voice(front_door: Any, real_engines: EngineSet) -> None:
    conn = front_door
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
                }
            },
        }
    )
    sender = asyncio.create_task(
        stream(conn, np.concatenate([silence(300), speak("What is the capital of France?"), silence(1500)]))
    )
    events: list[Any] = []
    await until(conn, lambda e: e.type == "response.done", events)
    await until(conn, lambda e: e.type.endswith("input_audio_transcription.completed"), events)
    await sender
    kinds = [e.type for e in events]
    assert "conversation.item.input_audio_transcription.delta" in kinds  # live captions, remote partials
    [user] = [e for e in events if e.type.endswith("input_audio_transcription.completed")]
    assert "capital of france" in user.transcript.lower()
    [done] = [e.response for e in events if e.type == "response.done"]
    assert done.status == "completed"
    assert "paris" in done.output[0].content[0].transcript.lower()
    audio = np.concatenate(
        [pcm16_to_float(base64.b64decode(e.delta)) for e in events if e.type == "response.output_audio.delta"]
    )
    assert audio.size > 24_000 * 0.5
    assert "paris" in transcribe_back(real_engines, audio).lower()  # the voice says what the text says
