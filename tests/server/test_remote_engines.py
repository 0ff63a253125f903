"""A front door whose ASR and voice are on another server, over loopback, with fake engines.

An engine server (our own, with the fake transcriber and tone voice) answers
``/v1/audio/transcriptions`` and ``/v1/audio/speech``; a front door with :class:`RemoteTranscriber`
and :class:`RemoteSynthesizer` pointed at it serves sessions through the official SDK. A front door
whose engine server is gone sends ``…transcription.failed`` and ``response.done`` ``failed``, and
its session goes on. ``test_remote_engines_real.py`` repeats the voice turn with the real models.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.bench.server_process import free_port
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.engines.remote_asr import RemoteAsrOptions, RemoteTranscriber
from openrealtime.engines.remote_http import RemoteOptions
from openrealtime.engines.remote_tts import RemoteSynthesizer, RemoteTtsOptions
from openrealtime.runtime.engines import EngineSet
from openrealtime.server import registry
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm, quiet, tone

CHUNK = 2400
VOICE_TURN = {
    "type": "realtime",
    "audio": {
        "input": {
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        }
    },
}


def front_door_engines(api_url: str) -> EngineSet:
    """Fake VAD and LLM here; the ASR and the voice at ``api_url`` (an engine server's ``/v1``)."""
    transcriber = RemoteTranscriber(RemoteAsrOptions(RemoteOptions(api_url, retries=1), model="fake"))
    synthesizer = RemoteSynthesizer(RemoteTtsOptions(RemoteOptions(api_url, retries=1)))
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=transcriber,
        transcriber_name="fake",
        chat=FakeChatModel("Paris is the capital."),
        synthesizers={"en": synthesizer, "*": synthesizer},
    )
    engines.closers += [transcriber.close, synthesizer.close]
    return engines


@pytest.fixture
async def engine_server() -> AsyncIterator[str]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(("what", "is", "the", "capital", "of", "france")),
        transcriber_name="fake",
        synthesizers={"en": ToneSynthesizer(), "*": ToneSynthesizer()},
    )
    async with running_server(Settings(port=0), engines=engines) as url:
        yield url.replace("ws://", "http://") + "/v1"
    engines.close()


async def connect(engines: EngineSet) -> AsyncIterator[Any]:
    async with running_server(Settings(port=0), engines=engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            yield connection


@pytest.fixture
async def front_door(engine_server: str) -> AsyncIterator[Any]:
    engines = front_door_engines(engine_server)
    async for connection in connect(engines):
        yield connection
    engines.close()


@pytest.fixture
async def orphan_door() -> AsyncIterator[Any]:
    """A front door whose engine server is not there (a port nothing listens on)."""
    engines = front_door_engines(f"http://127.0.0.1:{free_port()}/v1")
    async for connection in connect(engines):
        yield connection
    engines.close()


async def stream(conn: Any, audio: np.ndarray) -> None:
    for i in range(0, audio.size, CHUNK):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
        await asyncio.sleep(0.005)


async def until(conn: Any, predicate: Any) -> list[Any]:
    events: list[Any] = []
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            events.append(event := await conn.recv())
            if predicate(event):
                return events


async def test_a_voice_turn_through_remote_asr_and_voice(front_door: Any) -> None:
    await front_door.session.update(session=VOICE_TURN)
    sender = asyncio.create_task(stream(front_door, np.concatenate([quiet(300), tone(2500), quiet(900)])))
    events = await until(front_door, lambda e: e.type == "response.done")
    await sender
    if not any(e.type == "conversation.item.input_audio_transcription.completed" for e in events):
        events += await until(front_door, lambda e: e.type == "conversation.item.input_audio_transcription.completed")
    kinds = [e.type for e in events]
    deltas = "".join(e.delta for e in events if e.type == "conversation.item.input_audio_transcription.delta")
    [completed] = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert completed.transcript.startswith("what is the capital")
    assert completed.transcript.startswith(deltas.strip())  # live captions came through the remote too
    assert "conversation.item.input_audio_transcription.delta" in kinds
    [done] = [e for e in events if e.type == "response.done"]
    assert done.response.status == "completed"
    audio = np.concatenate(
        [pcm16_to_float(base64.b64decode(e.delta)) for e in events if e.type == "response.output_audio.delta"]
    )
    # The tone voice speaks 60 ms a character: "Paris is the capital." is 1.26 s at 24 kHz.
    assert audio.size == pytest.approx(24_000 * 0.06 * len("Paris is the capital."), rel=0.05)


async def test_an_unreachable_engine_server_fails_the_turn_and_the_answer_and_the_session_goes_on(
    orphan_door: Any,
) -> None:
    conn = orphan_door
    await conn.session.update(session={**VOICE_TURN, "output_modalities": ["audio"]})
    sender = asyncio.create_task(stream(conn, np.concatenate([quiet(300), tone(1000), quiet(900)])))
    events = await until(conn, lambda e: e.type == "conversation.item.input_audio_transcription.failed")
    await sender
    failed = events[-1]
    assert failed.error.code == "asr_unavailable"
    assert "Connection refused" in failed.error.message or "connect" in failed.error.message.lower()
    events = await until(conn, lambda e: e.type == "response.done")
    done = events[-1].response
    assert done.status == "failed"
    assert done.status_details.error.code == "tts_unavailable"
    # The session goes on: a text turn is answered (its speech fails again, its text is whole).
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]}
    )
    await conn.response.create(response={"output_modalities": ["text"]})
    events = await until(conn, lambda e: e.type == "response.done")
    assert events[-1].response.status == "completed"
    assert events[-1].response.output[0].content[0].text == "Paris is the capital."


async def test_a_transcription_session_on_an_unreachable_asr_fails_its_turn_and_goes_on() -> None:
    engines = front_door_engines(f"http://127.0.0.1:{free_port()}/v1")
    manual = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
    }
    async with (
        running_server(Settings(port=0), engines=engines) as url,
        websockets.connect(f"{url}/v1/realtime?intent=transcription") as ws,
    ):
        await ws.send(json.dumps({"type": "session.update", "session": manual}))
        for turn in range(2):  # the second turn fails the same way: the session is still there
            audio = base64.b64encode(pcm(tone(600))).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": f"commit_{turn}"}))
            async with asyncio.timeout(TIMEOUT_S):
                while (event := json.loads(await ws.recv()))["type"] not in (
                    "conversation.item.input_audio_transcription.failed",
                    "conversation.item.input_audio_transcription.completed",
                ):
                    pass
            assert event["type"] == "conversation.item.input_audio_transcription.failed"
            assert event["error"]["code"] == "asr_unavailable"
            assert event["error"]["type"] == "server_error"
    engines.close()


class SlowTranscriber(FakeTranscriber):
    """The fake transcriber on a server that takes ``seconds`` a decode; keeps each decode's length."""

    def __init__(self, seconds: float) -> None:
        super().__init__(("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))
        self.seconds = seconds
        self.decoded_s: list[float] = []

    def transcribe(self, audio: np.ndarray, options: Any) -> Any:
        time.sleep(self.seconds)  # the remote's own latency, in its worker thread
        self.decoded_s.append(audio.size / self.sample_rate_hz)
        return super().transcribe(audio, options)


async def test_a_slow_remote_gets_fewer_larger_partial_decodes_and_captions_still_flow() -> None:
    decode_s = 0.5
    slow = SlowTranscriber(decode_s)
    remote = EngineSet(vad=EnergyVad(), transcriber=slow, transcriber_name="fake")
    async with running_server(Settings(port=0), engines=remote) as url:
        engines = front_door_engines(url.replace("ws://", "http://") + "/v1")
        async for conn in connect(engines):
            await conn.session.update(session={**VOICE_TURN, "output_modalities": ["text"]})
            speech_s = 4.0
            sender = asyncio.create_task(stream_at_pace(conn, np.concatenate([quiet(300), tone(4000), quiet(1000)])))
            events = await until(conn, lambda e: e.type == "conversation.item.input_audio_transcription.completed")
            await sender
        engines.close()
    remote.close()
    deltas = [e.delta for e in events if e.type == "conversation.item.input_audio_transcription.delta"]
    assert len(deltas) >= 2  # captions while the turn is spoken, not only at its end
    assert "".join(deltas).split()[:3] == ["one", "two", "three"]
    assert events[-1].transcript.startswith("one two three four five six seven")
    # One decode in flight a turn: each partial waits for the one before, so it covers all the audio
    # that came meanwhile (at least one decode's time of it), instead of one every 200 ms.
    partials = slow.decoded_s[:-2]  # the last two: the speculative and the committed finals
    assert len(partials) <= speech_s / decode_s + 2
    steps = [b - a for a, b in itertools.pairwise(partials)]
    assert steps
    assert min(steps[1:] or steps) >= decode_s * 0.8


async def stream_at_pace(conn: Any, audio: np.ndarray) -> None:
    """``audio`` in 100 ms appends at real-time pace (as a microphone sends it)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, i in enumerate(range(0, audio.size, CHUNK)):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
        await asyncio.sleep(max(0.0, start + (index + 1) * CHUNK / 24_000 - loop.time()))


def test_the_registry_loads_no_whisper_and_no_piper_for_remote_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    from openrealtime.engines import piper_tts, whisper

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local speech model was loaded")

    monkeypatch.setattr(whisper, "WhisperTranscriber", refuse)
    monkeypatch.setattr(piper_tts, "PiperSynthesizer", refuse)
    monkeypatch.setattr(registry, "load_chat_model", lambda settings: FakeChatModel())
    monkeypatch.setattr(registry, "load_vad", EnergyVad)
    monkeypatch.setattr(registry, "load_end_of_turn", lambda: None)
    monkeypatch.setattr(registry, "load_noise_suppressor", lambda: None)
    settings = Settings(
        asr_url="http://asr.test/v1",
        asr_model="base",
        asr_workers=2,
        tts_url="http://tts.test/v1",
        tts_model="kokoro",
        tts_voice_map="alloy=af_bella",
        tts_api_key="secret",
    )
    engines = registry.load_engines(settings)
    try:
        assert isinstance(engines.transcriber, RemoteTranscriber)
        assert engines.transcriber.multilingual  # "base", not a .en model
        assert engines.transcriber.options.language_codes["english"] == "en"
        assert len(engines.asr_worker._threads) == 8  # requests in flight, not cores
        voice = engines.synthesizer_for("en")
        assert isinstance(voice, RemoteSynthesizer)
        assert engines.synthesizer_for("de") is voice
        assert voice.options.voice_map == {"alloy": "af_bella"}
        assert voice.endpoint.options.api_key == "secret"
        assert len(engines.closers) == 2
    finally:
        engines.close()
    assert settings.redacted()["tts_api_key"] == "***"


def test_a_bad_voice_map_or_url_stops_the_start() -> None:
    from openrealtime.server.remote_engines import parse_voice_map, remote_synthesizer, remote_transcriber

    assert parse_voice_map(" alloy = af_bella ,, echo=am_adam") == {"alloy": "af_bella", "echo": "am_adam"}
    with pytest.raises(ValueError, match="ours=theirs"):
        parse_voice_map("alloy")
    with pytest.raises(ValueError, match="tts_voice_map"):
        remote_synthesizer(Settings(tts_url="http://tts.test/v1", tts_voice_map="alloy=,echo=x"))
    with pytest.raises(ValueError, match="asr_url must be an http"):
        remote_transcriber(Settings(asr_url="localhost:8000/v1"))
    with pytest.raises(ValueError, match="tts_url must be an http"):
        remote_synthesizer(Settings(tts_url="ftp://tts.test/v1"))
