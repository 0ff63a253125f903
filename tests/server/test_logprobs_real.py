"""Whisper's token log-probabilities and word timings with the real model, through the official SDK:
a transcription session with ``include`` and the REST endpoint's ``verbose_json`` words."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

import openrealtime
from openrealtime.bench.speech import word_error_rate
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.media import decode_upload
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, WIRE_RATE_HZ, pcm, quiet

pytestmark = pytest.mark.real

SAMPLES = Path(openrealtime.__file__).parent / "samples"
DEMO_WAV = (SAMPLES / "demo.wav").read_bytes()
DEMO_TEXT = (SAMPLES / "demo.txt").read_text().strip()
DEMO_S = 8.84
MAX_WER = 0.1
CHUNK = 2400  # 100 ms at 24 kHz
INCLUDE = ["item.input_audio_transcription.logprobs"]


@pytest.fixture
async def server(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield url


async def transcribe_turn(url: str, include: list[str] | None) -> list[Any]:
    """The demo spoken into a transcription session and committed by hand: its transcription events."""
    client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
    audio = decode_upload(DEMO_WAV, rate_hz=WIRE_RATE_HZ, max_s=60)
    session: dict[str, Any] = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": None}},
    }
    if include is not None:
        session["include"] = include
    events: list[Any] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        await conn.session.update(session=session)
        with_tail = [*(audio[i : i + CHUNK] for i in range(0, audio.size, CHUNK)), quiet(300)]
        for chunk in with_tail:
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(chunk)).decode())
            await asyncio.sleep(0.01)  # pacing the producer, so live deltas come; not ordering events
        await conn.input_audio_buffer.commit()
        async with asyncio.timeout(TIMEOUT_S * 3):
            while True:
                event = await conn.recv()
                if event.type.startswith("conversation.item.input_audio_transcription"):
                    events.append(event)
                if event.type == "conversation.item.input_audio_transcription.completed":
                    return events


async def test_a_session_with_include_gets_logprobs_that_spell_the_transcript(server: str) -> None:
    events = await transcribe_turn(server, INCLUDE)
    *deltas, completed = events
    assert deltas
    assert word_error_rate([DEMO_TEXT], [completed.transcript]) <= MAX_WER
    for delta in deltas:
        assert delta.logprobs is not None
        assert "".join(p.token for p in delta.logprobs) == delta.delta
    assert completed.logprobs is not None
    assert "".join(p.token for p in completed.logprobs) == completed.transcript
    assert [p.token for d in deltas for p in d.logprobs] == [p.token for p in completed.logprobs]
    assert all(p.logprob <= 0 for p in completed.logprobs)
    assert all(bytes(p.bytes) == p.token.encode() for p in completed.logprobs)
    # Whisper is sure of most of what it hears in clear speech.
    assert sum(p.logprob > -1.0 for p in completed.logprobs) >= 0.8 * len(completed.logprobs)


async def test_a_session_without_include_gets_no_logprobs(server: str) -> None:
    events = await transcribe_turn(server, None)
    assert events
    assert all(event.logprobs is None for event in events)


async def test_word_timestamps_give_the_words_in_order_with_sensible_times(server: str) -> None:
    base = server.replace("ws://", "http://") + "/v1"
    async with AsyncOpenAI(api_key="sk-local", base_url=base, max_retries=0) as client:
        verbose = await client.audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV, "audio/wav"),
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
        both = await client.audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV, "audio/wav"),
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
        with_logprobs = await client.audio.transcriptions.create(
            file=("demo.wav", DEMO_WAV, "audio/wav"), model="gpt-4o-transcribe", include=["logprobs"]
        )
    words = verbose.words
    assert words
    assert verbose.segments is None  # ["word"] alone: words only, as OpenAI answers
    assert word_error_rate([DEMO_TEXT], [verbose.text]) <= MAX_WER
    assert "".join(w.word for w in words) == verbose.text.replace(" ", "")  # every word, in order
    assert all(0.0 <= w.start <= w.end <= DEMO_S for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(a.end <= b.start + 0.01 for a, b in itertools.pairwise(words))
    assert words[0].start < 1.0  # "Good morning" opens the recording...
    assert words[-1].end > DEMO_S - 2.0  # ...and "at all." closes it
    assert 0.1 < max(w.end - w.start for w in words) < 2.0

    assert both.words == words
    assert both.segments
    for segment in both.segments:
        assert segment.tokens
        assert -1.0 < segment.avg_logprob < 0.0
        assert 0.0 <= segment.no_speech_prob < 0.5

    assert with_logprobs.logprobs
    assert "".join(p.token or "" for p in with_logprobs.logprobs) == with_logprobs.text
    assert all((p.logprob or 0.0) <= 0 for p in with_logprobs.logprobs)
