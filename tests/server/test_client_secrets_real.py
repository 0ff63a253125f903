"""A client secret over the real models (Silero, Whisper, SmolLM2, piper): minted by the official SDK
with the server's key, then a spoken turn held with the secret alone, in the config it carries."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import numpy as np
import pytest
from openai import AsyncOpenAI

from openrealtime.bench.speech import silence, speak
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm

pytestmark = pytest.mark.real

KEY = "sk-server-key-123"
CHUNK = 2400  # 100 ms at 24 kHz
INSTRUCTIONS = "You answer questions about geography in one short sentence."


async def test_a_secret_holds_a_spoken_turn_in_its_config(real_engines: EngineSet) -> None:
    async with (
        running_server(Settings(port=0, api_key=KEY), engines=real_engines) as url,
        contextlib.AsyncExitStack() as clients,
    ):
        server = AsyncOpenAI(api_key=KEY, base_url=url.replace("ws://", "http://") + "/v1")
        clients.push_async_callback(server.close)
        secret = await server.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 60},
            session={
                "type": "realtime",
                "model": "gpt-realtime",
                "instructions": INSTRUCTIONS,
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-mini-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
                    }
                },
            },
        )
        browser = AsyncOpenAI(api_key=secret.value, websocket_base_url=f"{url}/v1")
        clients.push_async_callback(browser.close)
        async with browser.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            assert created.session.instructions == INSTRUCTIONS
            assert created.session.audio.input.transcription.model == "gpt-4o-mini-transcribe"
            question = np.concatenate([silence(300), speak("What is the capital of France?"), silence(1500)])
            for start in range(0, question.size, CHUNK):
                chunk = base64.b64encode(pcm(question[start : start + CHUNK])).decode()
                await conn.input_audio_buffer.append(audio=chunk)
            heard, answer = "", None
            async with asyncio.timeout(TIMEOUT_S * 3):
                async for event in conn:
                    if event.type == "conversation.item.input_audio_transcription.completed":
                        heard = event.transcript
                    if event.type == "response.done":
                        answer = event.response
                        break
    assert "capital of france" in heard.lower()
    assert answer is not None
    assert answer.status == "completed"
    assert "paris" in (answer.output[0].content[0].transcript or "").lower()
