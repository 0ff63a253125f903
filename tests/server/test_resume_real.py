"""A spoken conversation resumed with the real models (Silero, Whisper, SmolLM2, piper), through the
official SDK: the connection is cut in the middle of the second answer, the session comes back with
both turns, their words and the first turn's audio, the cut answer incomplete, and the next answer
follows them."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.bench.speech import silence, speak
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.server.test_realtime_real import stream, until

pytestmark = pytest.mark.real

VOICE = {
    "type": "realtime",
    "audio": {
        "input": {
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
        }
    },
}


async def spoken_turn(conn: Any, text: str, *, stop: str = "response.done") -> list[Any]:
    sender = asyncio.create_task(stream(conn, np.concatenate([silence(300), speak(text), silence(1500)])))
    events = await until(conn, lambda e: e.type == stop)
    await sender
    return events


async def test_a_spoken_conversation_resumes_after_a_cut_mid_answer(real_engines: EngineSet) -> None:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            session_id = (await conn.recv()).session.id
            await conn.session.update(session=VOICE)  # type: ignore[arg-type]
            first = await spoken_turn(conn, "What is the capital of France?")
            question = next(e for e in first if e.type == "conversation.item.input_audio_transcription.completed")
            answer = first[-1].response.output[0]
            cut = await spoken_turn(conn, "Tell me a long story about a dragon.", stop="response.output_audio.delta")
            cut_id = cut[-1].item_id
        # The socket is gone mid-answer; the session comes back.
        resume = {"session_id": session_id}
        async with client.realtime.connect(model="gpt-realtime", extra_query=resume) as conn:
            created = await conn.recv()
            assert created.session.id == session_id
            assert created.session.audio.input.turn_detection.silence_duration_ms == 400
            await conn.conversation.item.retrieve(item_id=question.item_id)
            retrieved = (await until(conn, lambda e: e.type == "conversation.item.retrieved"))[-1]
            assert "france" in (retrieved.item.content[0].transcript or "").lower()
            assert retrieved.item.content[0].audio  # the spoken turn's audio was kept
            await conn.conversation.item.retrieve(item_id=answer.id)
            retrieved = (await until(conn, lambda e: e.type == "conversation.item.retrieved"))[-1]
            assert retrieved.item.content[0].transcript == answer.content[0].transcript
            await conn.conversation.item.retrieve(item_id=cut_id)
            retrieved = (await until(conn, lambda e: e.type == "conversation.item.retrieved"))[-1]
            assert retrieved.item.status == "incomplete"
            after = await spoken_turn(conn, "And what is the capital of Italy?")
            done = after[-1].response
            assert done.status == "completed"
            assert "rome" in done.output[0].content[0].transcript.lower()
            added = [e.item.id for e in after if e.type == "conversation.item.added"]
            assert question.item_id not in added  # nothing twice
            assert added[0] != cut_id
        await client.close()
