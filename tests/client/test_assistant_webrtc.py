"""The assistant over a WebRTC call (``--transport webrtc``) against the loopback server with fake
engines: the turn spoken on the call's track, the answer heard from the server's, the CLI's WAV out."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

from openrealtime.client.assistant import Assistant, scripted_turn
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.audio_io import WIRE_RATE_HZ, read_wav, write_wav
from openrealtime.client.call import calls_url
from openrealtime.client.playback import ClockPlayer
from openrealtime.exceptions import ConnectionClosedError
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, tone
from tests.webrtc.test_calls import ANSWER, KEY, engines

__all__ = ["engines"]  # the fixture: fake engines whose voice is a 220 Hz tone

VOICE_HZ = 220


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / WIRE_RATE_HZ)[int(np.argmax(spectrum))])


def test_the_calls_endpoint_of_a_realtime_url() -> None:
    assert calls_url("ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime") == (
        "http://127.0.0.1:8000/v1/realtime/calls",
        "gpt-realtime",
    )
    assert calls_url("wss://api.openai.com/v1/realtime") == ("https://api.openai.com/v1/realtime/calls", "gpt-realtime")


async def test_a_turn_over_a_call_is_answered_in_speech_heard_on_the_track(engines: EngineSet) -> None:
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        options = AssistantOptions(
            url=f"{url}/v1/realtime?model=gpt-realtime", api_key=KEY, keep_audio=True, transport="webrtc"
        )
        async with Assistant(options, player=ClockPlayer()) as assistant:
            turn = await scripted_turn(assistant, tone(1000), realtime=False, timeout_s=TIMEOUT_S)
    assert turn.assistant == [ANSWER]
    assert [r["status"] for r in turn.responses] == ["completed"]
    assert assistant.errors == []
    heard = np.frombuffer(turn.audio, dtype=np.int16).astype(np.float32) / 32768
    assert heard.size > WIRE_RATE_HZ  # over a second of the spoken answer
    start = int(np.argmax(np.abs(heard) > 0.05))
    assert abs(dominant_hz(heard[start : start + WIRE_RATE_HZ // 2]) - VOICE_HZ) < 5


async def test_a_refused_call_is_reported(engines: EngineSet) -> None:
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        options = AssistantOptions(url=f"{url}/v1/realtime", api_key="sk-wrong", transport="webrtc")
        with pytest.raises(ConnectionClosedError, match=r"refused \(401\)"):
            async with Assistant(options):
                pass


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport"):
        Assistant(AssistantOptions(transport="carrier-pigeon"))


async def test_the_cli_holds_a_turn_over_webrtc_and_saves_the_answer(engines: EngineSet, tmp_path: Path) -> None:
    question, answer = tmp_path / "question.wav", tmp_path / "answer.wav"
    write_wav(question, tone(1000))
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "openrealtime", "assistant", str(question), "--fast", "--transport", "webrtc",
            "--url", f"{url}/v1/realtime?model=gpt-realtime", "--api-key", KEY, "--out", str(answer),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(TIMEOUT_S * 2):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert f"assistant: {ANSWER}" in out.decode().splitlines()
    saved = read_wav(answer)
    assert saved.size > WIRE_RATE_HZ
    start = int(np.argmax(np.abs(saved) > 0.05))
    assert abs(dominant_hz(saved[start : start + WIRE_RATE_HZ // 2]) - VOICE_HZ) < 5
