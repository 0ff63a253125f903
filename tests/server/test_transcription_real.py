"""Transcription with the real models on synthesized speech, driven by the official SDK."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.bench.speech import SENTENCES, conversation, speak, word_error_rate
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm, quiet

pytestmark = pytest.mark.real

CHUNK = 2400  # 100 ms


@pytest.fixture
async def client(real_engines: EngineSet) -> AsyncIterator[AsyncOpenAI]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")


async def stream(conn: Any, audio: np.ndarray, *, pace_s: float = 0.0) -> None:
    for i in range(0, audio.size, CHUNK):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
        if pace_s:
            await asyncio.sleep(pace_s)  # pacing the producer, not ordering events


async def collect(conn: Any, turns: int) -> list[Any]:
    events: list[Any] = []
    done = 0
    async with asyncio.timeout(TIMEOUT_S * 6):
        while done < turns:
            event = await conn.recv()
            events.append(event)
            if event.type == "conversation.item.input_audio_transcription.completed":
                done += 1
    return events


async def test_vad_turns_are_transcribed_in_order_with_live_deltas(client: AsyncOpenAI) -> None:
    texts = list(SENTENCES[:4])
    audio, _ = conversation(texts)
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
        )
        sender = asyncio.create_task(stream(conn, audio, pace_s=0.02))
        events = await collect(conn, len(texts))
        await sender
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    assert [c.previous_item_id for c in committed] == [None] + [c.item_id for c in committed[:-1]]
    by_item: dict[str, list[str]] = {}
    for e in events:
        if e.type == "conversation.item.input_audio_transcription.delta":
            by_item.setdefault(e.item_id, []).append(e.delta)
    finals = {e.item_id: e.transcript for e in events if e.type.endswith("transcription.completed")}
    transcripts = [finals[c.item_id] for c in committed]
    # The live deltas are append-only; the transcript is the whole turn's decode, which may correct a
    # word the captions showed early ("the quid brown fox" shown, "The quick brown fox" final).
    shown = ["".join(by_item.get(c.item_id, [])) for c in committed]
    assert word_error_rate(transcripts, shown) <= 0.15
    assert word_error_rate(texts, transcripts) <= 0.05


async def test_deltas_arrive_before_the_speaker_stops(client: AsyncOpenAI) -> None:
    long_turn = speak(SENTENCES[0] + " " + SENTENCES[1])
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad"},
                    }
                },
            }
        )
        sender = asyncio.create_task(stream(conn, np.concatenate([quiet(300), long_turn, quiet(1000)]), pace_s=0.05))
        events = await collect(conn, 1)
        await sender
    kinds = [e.type for e in events]
    first_delta = kinds.index("conversation.item.input_audio_transcription.delta")
    assert first_delta < kinds.index("input_audio_buffer.speech_stopped")


async def test_manual_commits_and_silence(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-realtime-whisper", "language": "en"},
                        "turn_detection": None,
                    }
                },
            }
        )
        await stream(conn, quiet(1000))
        await conn.input_audio_buffer.commit()
        await stream(conn, speak(SENTENCES[2]))
        await conn.input_audio_buffer.commit()
        events = await collect(conn, 2)
    finals = [e.transcript for e in events if e.type.endswith("transcription.completed")]
    assert finals[0] == ""
    assert word_error_rate([SENTENCES[2]], [finals[1]]) <= 0.1


BAD_INPUTS = [
    ("{not json", "invalid_json"),
    (b"\x00binary", "invalid_event"),
    ('{"type": "transcription_session.update", "session": {}}', "invalid_value"),
    ('{"type": "input_audio_buffer.append", "audio": "%%%"}', "invalid_value"),
    ('{"type": "input_audio_buffer.append", "audio": "", "bogus": 1}', "unknown_parameter"),
    ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty"),
    (
        '{"type": "session.update", "session": {"type": "transcription", "audio": {"input": '
        '{"format": {"type": "audio/pcm", "rate": 16000}}}}}',
        "integer_below_min_value",
    ),
    (
        '{"type": "session.update", "session": {"type": "transcription", "audio": {"input": '
        '{"transcription": {"model": "made-up-model"}}}}}',
        "invalid_value",
    ),
]


async def test_every_bad_input_gets_an_error_and_the_session_goes_on(client: AsyncOpenAI) -> None:
    import json

    oversized = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (16 * 1024 * 1024 * 4 // 3)})
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        for index, (frame, code) in enumerate([*BAD_INPUTS, (oversized, "input_audio_buffer_append_too_large")]):
            if isinstance(frame, str) and frame.startswith('{"type"'):
                frame = frame[:-1] + f', "event_id": "bad_{index}"}}'
            await conn.send_raw(frame)
            async with asyncio.timeout(TIMEOUT_S):
                event = await conn.recv()
            assert event.type == "error", frame[:60]
            assert event.error.code == code
            assert event.error.type == "invalid_request_error"
            if isinstance(frame, str) and frame.startswith('{"type"'):
                assert event.error.event_id == f"bad_{index}"
        # Nothing was lost: the session still transcribes real speech correctly.
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
            }
        )
        await stream(conn, speak(SENTENCES[1]))
        await conn.input_audio_buffer.commit()
        events = await collect(conn, 1)
    [final] = [e.transcript for e in events if e.type.endswith("transcription.completed")]
    assert word_error_rate([SENTENCES[1]], [final]) <= 0.1
