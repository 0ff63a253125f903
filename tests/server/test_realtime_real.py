"""The voice assistant with the real models (Silero, Whisper, SmolLM2, piper), driven by the official SDK."""

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
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm

pytestmark = pytest.mark.real

CHUNK = 2400


@pytest.fixture
async def conn(real_engines: EngineSet) -> AsyncIterator[Any]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            yield connection


async def stream(conn: Any, audio: np.ndarray, *, pace_s: float = 0.01) -> None:
    for i in range(0, audio.size, CHUNK):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
        await asyncio.sleep(pace_s)


async def until(conn: Any, predicate: Any, seen: list[Any] | None = None) -> list[Any]:
    events = [] if seen is None else seen
    async with asyncio.timeout(TIMEOUT_S * 3):
        while True:
            event = await conn.recv()
            events.append(event)
            if predicate(event):
                return events


def transcribe_back(real_engines: EngineSet, audio_24k: np.ndarray) -> str:
    from openrealtime.audio.resample import StreamResampler
    from openrealtime.contracts import TranscribeOptions

    audio = StreamResampler(24_000, 16_000).process(audio_24k, last=True)
    return real_engines.transcriber.transcribe(audio, TranscribeOptions(language="en")).text


async def test_spoken_question_is_answered_with_speech(conn: Any, real_engines: EngineSet) -> None:
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
    events = await until(conn, lambda e: e.type == "response.done")
    await sender
    kinds = [e.type for e in events]
    assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
    [user] = [e for e in events if e.type.endswith("transcription.completed")]
    assert "capital of france" in user.transcript.lower()
    done = events[-1].response
    assert done.status == "completed"
    transcript = done.output[0].content[0].transcript
    audio = np.concatenate(
        [pcm16_to_float(base64.b64decode(e.delta)) for e in events if e.type == "response.output_audio.delta"]
    )
    assert audio.size > 24_000 * 0.5
    assert "paris" in transcript.lower()
    # The audio says what the transcript says.
    heard = transcribe_back(real_engines, audio).lower()
    assert "paris" in heard


async def test_barge_in_cancels_and_truncate_trims(conn: Any) -> None:
    await conn.session.update(
        session={
            "type": "realtime",
            "instructions": "Answer with at least five long sentences.",
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
        }
    )
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Tell me the history of Rome in detail."}],
        }
    )
    await conn.response.create()
    events = await until(conn, lambda e: e.type == "response.output_audio.delta")
    item_id = events[-1].item_id
    # The user talks over the answer.
    sender = asyncio.create_task(stream(conn, np.concatenate([speak("Wait, stop please."), silence(800)])))
    events = await until(conn, lambda e: e.type == "response.done", events)
    kinds = [e.type for e in events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
    assert events[-1].response.status == "cancelled"
    assert events[-1].response.status_details.reason == "turn_detected"
    await sender
    await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=200)
    events = await until(conn, lambda e: e.type in ("conversation.item.truncated", "error"))
    assert events[-1].type == "conversation.item.truncated"
    assert events[-1].audio_end_ms == 200
    await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=10_000_000)
    events = await until(conn, lambda e: e.type == "error")
    assert "already shorter than" in events[-1].error.message


async def test_tool_round_trip(conn: Any) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    await conn.session.update(
        session={
            "type": "realtime",
            "tools": [tool],
            "tool_choice": "required",
            "output_modalities": ["text"],
        }
    )
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What is the weather in Paris?"}],
        }
    )
    await conn.response.create()
    events = await until(conn, lambda e: e.type == "response.done")
    [args] = [e for e in events if e.type == "response.function_call_arguments.done"]
    import json

    arguments = json.loads(args.arguments)
    assert isinstance(arguments["city"], str)
    await conn.conversation.item.create(
        item={
            "type": "function_call_output",
            "call_id": args.call_id,
            "output": '{"temp_c": 18, "sky": "cloudy"}',
        }
    )
    await conn.session.update(session={"type": "realtime", "tool_choice": "none"})
    await conn.response.create()
    events = await until(conn, lambda e: e.type == "response.done")
    assert events[-1].response.status == "completed"
    assert events[-1].response.output[0].type == "message"


async def test_out_of_band_and_errors(conn: Any) -> None:
    await conn.response.create(
        response={
            "conversation": "none",
            "output_modalities": ["text"],
            "metadata": {"job": "classify"},
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say yes."}]}],
        }
    )
    events = await until(conn, lambda e: e.type == "response.done")
    assert events[-1].response.conversation_id is None
    assert events[-1].response.metadata == {"job": "classify"}
    assert not [e for e in events if e.type == "conversation.item.added"]
    await conn.response.cancel()
    events = await until(conn, lambda e: e.type == "error")
    assert events[-1].error.code == "response_cancel_not_active"


async def test_a_second_turn_reuses_the_cached_conversation_and_metrics_show_it(real_engines: EngineSet) -> None:
    import httpx

    stats = real_engines.chat.stats  # type: ignore[union-attr]
    async with running_server(Settings(port=0), engines=real_engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            for question in ("What is the capital of France?", "And what is the capital of Italy?"):
                cached_before = stats.cached_tokens
                sender = asyncio.create_task(stream(connection, np.concatenate([speak(question), silence(1200)])))
                events = await until(connection, lambda e: e.type == "response.done")
                await sender
                assert events[-1].response.status == "completed"
            # The second answer's prompt started with the first turn, already in this session's slot:
            # more than the system prompt came from the cache.
            assert (
                stats.cached_tokens - cached_before
                > real_engines.chat.count_tokens(  # type: ignore[union-attr]
                    "You are a helpful, friendly voice assistant."
                )
                + 10
            )
        async with httpx.AsyncClient() as http:
            text = (await http.get(url.replace("ws://", "http://") + "/metrics")).text
    assert "openrealtime_llm_cached_prompt_tokens_total" in text
    assert "openrealtime_llm_running_completions 0" in text


async def test_the_output_speed_changes_how_long_the_answer_lasts(conn: Any) -> None:
    """The same (greedy) answer at ``audio.output.speed`` 0.5 and 1.5: it was accepted and ignored
    (2.66 / 2.74 s), now the slow one lasts about three times as long (piper's length scale)."""
    durations = {}
    for speed in (0.5, 1.5):
        await conn.session.update(session={"type": "realtime", "audio": {"output": {"speed": speed}}})
        await conn.response.create(
            response={
                "conversation": "none",
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "What is the capital of France?"}],
                    }
                ],
            }
        )
        events = await until(conn, lambda e: e.type == "response.done")
        audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
        durations[speed] = len(audio) / 2 / 24_000
    assert durations[0.5] > 2.2 * durations[1.5], durations


async def test_a_turn_after_a_long_silence_starts_at_its_first_word(conn: Any) -> None:
    # Carried through the silence, Silero's state had drifted so that "Wait," scored too low to start a
    # turn: it began ~0.6 s later, at "can you" (engines/silero.py makes the state fresh in the quiet).
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 0, "create_response": False}}
            },
        }
    )
    words = speak("Wait, can you say that again?")
    onset_ms = 45_000 + int(np.flatnonzero(np.abs(words) > 0.02)[0]) * 1000 // 24_000
    await stream(conn, np.concatenate([silence(45_000), words, silence(1000)]), pace_s=0.0)
    events = await until(conn, lambda e: e.type == "input_audio_buffer.speech_started")
    assert onset_ms - 100 <= events[-1].audio_start_ms <= onset_ms + 150
