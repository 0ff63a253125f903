"""Issue 14: a turn's final transcript is an offline decode of its audio, whatever the load.

With the real models, through the official SDK: each turn's ``completed`` transcript equals what
the same engine says of that turn's speech (its audio fetched back with
``conversation.item.retrieve``, less the silence that ended the turn, which the item holds too)
decoded offline with the same options, and eight concurrent streams get the same transcripts as one. Before,
the transcript kept the words the live captions had sent, so it trailed offline accuracy and changed
with the load ("finance team" became "fine and steam" in every stream at 4 streams).
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.audio.resample import StreamResampler
from openrealtime.bench.speech import SENTENCES, conversation, normalize
from openrealtime.contracts import TranscribeOptions
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm

pytestmark = pytest.mark.real

CHUNK = 2400  # 100 ms at 24 kHz
SILENCE_MS = 500  # server_vad's silence that ends a turn
TEXTS = [SENTENCES[1], SENTENCES[5], SENTENCES[9]]
SESSION = {
    "type": "transcription",
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": SILENCE_MS},
        }
    },
}


@pytest.fixture
async def client(real_engines: EngineSet) -> AsyncIterator[AsyncOpenAI]:
    settings = Settings(port=0, max_transcription_sessions=0)
    async with running_server(settings, engines=real_engines) as url:
        yield AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")


async def one_stream(client: AsyncOpenAI, audio: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Stream ``audio`` at real-time pace; each turn's transcript and its audio as retrieved."""
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.recv()
        await conn.session.update(session=SESSION)  # type: ignore[arg-type]

        async def send() -> None:
            for i in range(0, audio.size, CHUNK):
                await conn.input_audio_buffer.append(audio=base64.b64encode(pcm(audio[i : i + CHUNK])).decode())
                await asyncio.sleep(0.1)  # real time: the load is eight live speakers

        sender = asyncio.create_task(send())
        order: list[str] = []
        finals: dict[str, str] = {}
        async with asyncio.timeout(TIMEOUT_S * 8):
            while len(finals) < len(TEXTS):
                event = await conn.recv()
                if event.type == "input_audio_buffer.committed":
                    order.append(event.item_id)
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    finals[event.item_id] = event.transcript
            await sender
            turns = []
            for item_id in order:
                await conn.conversation.item.retrieve(item_id=item_id)
                event = await conn.recv()
                while event.type != "conversation.item.retrieved":
                    event = await conn.recv()
                [part] = event.item.content  # type: ignore[union-attr]
                turns.append((finals[item_id], pcm16_to_float(base64.b64decode(part.audio))))
    return turns


def offline(engines: EngineSet, audio_24k: np.ndarray) -> str:
    """The turn's speech decoded offline: its audio up to where the speech ended. The VAD ends a turn
    at the first frame boundary ``SILENCE_MS`` after the pause began, so the item holds that silence
    in whole frames; the server decodes the turn without it (its final starts in the pause), and
    Whisper ``tiny.en`` may hear the same words otherwise with half a second more silence after them
    ("please send me" became "place and me" in one CI run)."""
    vad = engines.vad
    silence = math.ceil(SILENCE_MS * vad.sample_rate_hz / 1000 / vad.frame_samples) * vad.frame_samples
    speech_24k = audio_24k[: audio_24k.size - silence * 24_000 // vad.sample_rate_hz]
    audio = StreamResampler(24_000, engines.transcriber.sample_rate_hz).process(speech_24k, last=True)
    return engines.transcriber.transcribe(audio, TranscribeOptions(language="en", final=True)).text


async def test_the_final_is_the_offline_decode_of_the_turn_with_one_stream_and_with_eight(
    client: AsyncOpenAI, real_engines: EngineSet
) -> None:
    audio, _ = conversation(TEXTS)
    [alone] = [await one_stream(client, audio)]
    assert len(alone) == len(TEXTS)
    for transcript, turn_audio in alone:
        assert normalize(transcript) == normalize(offline(real_engines, turn_audio))
    loaded = await asyncio.gather(*(one_stream(client, audio) for _ in range(8)))
    for turns in loaded:
        assert [t for t, _ in turns] == [t for t, _ in alone]  # the same words under load
