"""Translation sessions on the real server (127.0.0.1), driven by the official ``openai`` SDK.

The first tests run on fake engines (milliseconds); the ``real`` ones load the offline models once per
run and translate piper speech from English into Spanish.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI, OpenAI, OpenAIError
from openai.lib.realtime_translation import TranslationSession

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm, quiet, tone

MODEL = "gpt-realtime-translate"
FRAME_SAMPLES = 4800  # 200 ms at 24 kHz, the engine frame
SPANISH = {"audio": {"input": {"transcription": {"model": "gpt-realtime-whisper"}}, "output": {"language": "es"}}}


def b64(samples: np.ndarray) -> str:
    return base64.b64encode(pcm(samples)).decode()


def frames(samples: np.ndarray) -> list[str]:
    return [b64(samples[i : i + FRAME_SAMPLES]) for i in range(0, samples.size, FRAME_SAMPLES)]


@pytest.fixture
def fake_translation_engines() -> AsyncIterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(("Good", "morning,", "how", "are", "you?"), words_per_second=4.0),
        transcriber_name="fake",
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )
    yield engines  # type: ignore[misc]
    engines.close()


@pytest.fixture
async def fake_base(fake_translation_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=fake_translation_engines) as url:
        yield url


async def collect(conn: Any) -> list[Any]:
    """Every event until the server closes (the SDK's iterator ends quietly on 1000)."""
    seen = []
    async with asyncio.timeout(TIMEOUT_S):
        async for event in conn:
            seen.append(event)
    return seen


def text_of(events: list[Any], kind: str) -> str:
    return "".join(e.delta for e in events if e.type == kind)


def audio_of(events: list[Any]) -> np.ndarray:
    chunks = [pcm16_to_float(base64.b64decode(e.delta)) for e in events if e.type == "session.output_audio.delta"]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


# --- fake engines ------------------------------------------------------------------------------------


async def test_sdk_translation_session_with_fake_engines(fake_base: str) -> None:
    client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{fake_base}/v1")
    async with client.realtime.translations.connect(model=MODEL) as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.type == "translation"
        assert created.session.model == MODEL
        assert created.session.id.startswith("sess_")
        await conn.session.update(session=SPANISH)  # type: ignore[arg-type]
        updated = await conn.recv()
        assert updated.type == "session.updated"
        assert updated.session.audio.output.language == "es"
        assert updated.session.audio.input.transcription.model == "gpt-realtime-whisper"
        for chunk in frames(np.concatenate([quiet(200), tone(1400), quiet(600)])):
            await conn.session.input_audio_buffer.append(audio=chunk)
        await conn.send({"type": "session.close"})
        events = await collect(conn)
    kinds = [e.type for e in events]
    assert kinds[-1] == "session.closed"
    assert events[-1].event_id.startswith("event_")
    assert text_of(events, "session.input_transcript.delta") == "Good morning, how are you?"
    assert text_of(events, "session.output_transcript.delta") == "[es] GOOD MORNING, HOW ARE YOU?"
    audio_events = [e for e in events if e.type == "session.output_audio.delta"]
    assert {(e.format, e.sample_rate, e.channels) for e in audio_events} == {("pcm16", 24_000, 1)}
    assert all(e.elapsed_ms % 200 == 0 for e in events if hasattr(e, "elapsed_ms") and e.elapsed_ms)
    # ToneSynthesizer speaks 60 ms per character, at 24 kHz already.
    assert audio_of(events).size == len("[es] GOOD MORNING, HOW ARE YOU?") * 60 * 24


async def test_both_paths_serve_translations(fake_base: str) -> None:
    for base_url in (f"{fake_base}/v1", fake_base):  # /v1/realtime/translations and /realtime/translations
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=base_url)
        async with client.realtime.translations.connect(model="anything") as conn:
            created = await conn.recv()
            assert created.session.model == "anything"


async def test_bad_input_is_answered_and_the_session_goes_on(fake_base: str) -> None:
    url = f"{fake_base}/v1/realtime/translations?model={MODEL}"
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(b"\x00\x01")
        await ws.send(json.dumps({"type": "session.input_audio_buffer.append", "event_id": "a1", "audio": "%%%"}))
        await ws.send(json.dumps({"type": "response.create", "event_id": "r1"}))
        await ws.send("not json")
        errors = [json.loads(await ws.recv())["error"] for _ in range(4)]
        assert [(e["code"], e["param"], e["event_id"]) for e in errors] == [
            ("invalid_event", None, None),
            ("invalid_value", "audio", "a1"),
            ("invalid_value", "type", "r1"),
            ("invalid_json", None, None),
        ]
        assert errors[0]["message"] == "Expected a text WebSocket message; binary frames are not supported."
        await ws.send(json.dumps({"type": "session.close"}))
        closed = json.loads(await ws.recv())
        assert closed["type"] == "session.closed"
        assert closed["event_id"].startswith("event_")
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000


async def test_intent_and_missing_model_are_refused_at_connect(fake_base: str) -> None:
    for query, code in (
        (f"model={MODEL}&intent=transcription", "invalid_intent"),
        ("", "missing_model"),
    ):
        async with websockets.connect(f"{fake_base}/v1/realtime/translations?{query}") as ws:
            event = json.loads(await ws.recv())
            assert event["type"] == "error"
            assert event["error"]["code"] == code
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
            assert ws.close_code == 4000
    # The SDK's helper refuses an intent before connecting, as OpenAI's own clients do.
    client = OpenAI(api_key="sk-local", websocket_base_url=f"{fake_base}/v1")
    with (
        pytest.raises(ValueError, match="intent"),
        TranslationSession(client.realtime.translations, model=MODEL, extra_query={"intent": "x"}),
    ):
        pass


# --- real models -------------------------------------------------------------------------------------


@pytest.fixture
async def real_base(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield url


def english_speech() -> np.ndarray:
    from openrealtime.bench.speech import speak

    return np.concatenate(
        [
            quiet(300),
            speak("Please send me the report before the end of the week."),
            quiet(400),
            speak("I would like to book a table for two people tonight."),
        ]
    )


def speech_fraction(engines: EngineSet, audio_24k: np.ndarray) -> float:
    """Share of 32 ms frames in which Silero hears speech (tones and noise score near 0)."""
    from openrealtime.audio.resample import StreamResampler

    audio = StreamResampler(24_000, 16_000).process(audio_24k, last=True)
    stream = engines.vad.new_stream()
    frame = engines.vad.frame_samples
    probabilities = [stream.probability(audio[i : i + frame]) for i in range(0, audio.size - frame, frame)]
    return float(np.mean(np.array(probabilities) > 0.5)) if probabilities else 0.0


@pytest.mark.real
async def test_english_speech_becomes_spanish_text_and_speech(real_base: str, real_engines: EngineSet) -> None:
    client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{real_base}/v1")
    async with client.realtime.translations.connect(model=MODEL) as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(
            session={  # type: ignore[arg-type]
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-realtime-whisper"},
                        "noise_reduction": {"type": "near_field"},
                    },
                    "output": {"language": "es"},
                }
            }
        )
        assert (await conn.recv()).type == "session.updated"
        for chunk in frames(np.concatenate([english_speech(), quiet(800)])):
            await conn.session.input_audio_buffer.append(audio=chunk)
        await conn.send({"type": "session.close"})
        events = await collect(conn)
    assert [e.type for e in events if e.type == "error"] == []
    source = text_of(events, "session.input_transcript.delta").lower()
    target = text_of(events, "session.output_transcript.delta").lower()
    assert "report" in source
    assert "table" in source
    for word in ("informe", "semana", "mesa", "personas", "noche"):
        assert word in target, target
    audio = audio_of(events)
    assert 3.0 < audio.size / 24_000 < 15.0
    assert speech_fraction(real_engines, audio) > 0.4  # espeak-ng speech, not silence or a tone


# The SDK's sync client opens its websockets connection without a context manager, which websockets
# 17.1+ deprecates: a warning inside the SDK, not ours.
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
@pytest.mark.real
async def test_close_handshake_with_the_sdk_helper(real_base: str) -> None:
    """``TranslationSession``: ``session.close`` sent once, trailing output read up to ``session.closed``."""
    client = OpenAI(api_key="sk-local", websocket_base_url=f"{real_base}/v1")
    speech = english_speech()  # no trailing silence: the last sentence is only flushed by the close

    def run() -> list[Any]:
        with TranslationSession(client.realtime.translations, model=MODEL) as conn:
            events = [conn.recv()]
            conn.send({"type": "session.update", "session": SPANISH})  # type: ignore[typeddict-item]
            for chunk in frames(speech):
                conn.send({"type": "session.input_audio_buffer.append", "audio": chunk})
            conn.send({"type": "session.close"})
            conn.send({"type": "session.close"})  # sent once: a second one is ignored
            with pytest.raises(OpenAIError, match="input is closed"):
                conn.send({"type": "session.input_audio_buffer.append", "audio": b64(quiet(200))})
            while events[-1].type != "session.closed":
                events.append(conn.recv(timeout=TIMEOUT_S))
            return events

    events = await asyncio.to_thread(run)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert kinds[-1] == "session.closed"
    assert "error" not in kinds
    # The second sentence ends right at the close: its translation comes after the close, before closed.
    target = text_of(events, "session.output_transcript.delta").lower()
    assert "noche" in target
    assert kinds.index("session.output_audio.delta") < kinds.index("session.closed")
