"""A WebRTC call over the real models (Silero, Whisper tiny.en, SmolLM2, piper), end to end: an aiortc
client peer speaks a question on its microphone track, gets the events on ``oai-events`` and the answer
as audio on the remote track, and that audio transcribes back to the answer."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from openrealtime.bench.speech import silence, speak
from openrealtime.runtime.engines import EngineSet
from tests.conftest import TIMEOUT_S
from tests.engines.transcribe_back import transcribe
from tests.webrtc.peer import RATE_HZ
from tests.webrtc.test_calls import KEY, peer, server

pytestmark = pytest.mark.real

INSTRUCTIONS = "You answer questions about geography in one short sentence."


async def test_a_spoken_question_is_answered_with_speech_on_the_call(real_engines: EngineSet) -> None:
    session = {
        "type": "realtime",
        "instructions": INSTRUCTIONS,
        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
    }
    async with server(real_engines) as http, peer() as client:
        reply = await client.call(http, key=KEY, shape="json", session=session)
        assert reply.status_code == 201, reply.text
        await client.next("session.created", timeout_s=TIMEOUT_S)
        question = np.concatenate([silence(300), speak("What is the capital of France?"), silence(1500)])
        client.mic.say(soxr.resample(question, 24_000, RATE_HZ).astype(np.float32))
        heard = await client.next("conversation.item.input_audio_transcription.completed", timeout_s=TIMEOUT_S * 2)
        done = await client.next("response.done", timeout_s=TIMEOUT_S * 3)
        await client.next("output_audio_buffer.stopped", timeout_s=TIMEOUT_S * 3)
    assert "capital of france" in heard["transcript"].lower()
    assert done["response"]["status"] == "completed"
    answer = done["response"]["output"][0]["content"][0]["transcript"]
    assert "paris" in answer.lower()
    assert "response.output_audio.delta" not in [e["type"] for e in client.seen]
    audio = client.audio()
    spoken = audio[np.flatnonzero(np.abs(audio) > 0.01)[0] :]
    assert "paris" in transcribe(spoken, RATE_HZ)
