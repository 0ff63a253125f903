"""Adaptive barge-in on a WebRTC call over loopback (aiortc peer, fake engines): speech over the answer
holds the call's track at once; a backchannel lets the answer go on from where it stopped (nothing
lost, no clear), a real interruption clears it and truncates the item to what was heard."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.webrtc.peer import RATE_HZ
from tests.webrtc.test_calls import KEY, peer, server

ANSWER = "Hello there. How can I help you today?"  # 38 characters: 2.28 s of the fake voice's tone


def make_engines(script: tuple[str, ...]) -> EngineSet:
    voice = ToneSynthesizer()
    return EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(script, words_per_second=10),
        transcriber_name="fake",
        chat=FakeChatModel(ANSWER),
        synthesizers={"en": voice, "*": voice},
    )


def voiced_runs(audio: np.ndarray, gap_s: float = 0.01) -> list[tuple[float, float]]:
    """Where the fake voice's tone is heard, as (start, end) in seconds, runs closer than ``gap_s`` joined."""
    loud = np.flatnonzero(np.abs(audio) > 0.05)
    runs: list[tuple[float, float]] = []
    start = previous = int(loud[0])
    for index in loud[1:]:
        if index - previous > gap_s * RATE_HZ:
            runs.append((start / RATE_HZ, previous / RATE_HZ))
            start = int(index)
        previous = int(index)
    runs.append((start / RATE_HZ, previous / RATE_HZ))
    return runs


@pytest.fixture
def backchannel() -> Any:
    engines = make_engines(("mm-hm",))
    yield engines
    engines.close()


@pytest.fixture
def interruption() -> Any:
    engines = make_engines(("wait", "stop", "please", "tell", "me", "more"))
    yield engines
    engines.close()


async def test_a_backchannel_holds_the_answer_then_it_goes_on_with_nothing_lost(backchannel: EngineSet) -> None:
    async with server(backchannel, barge_in="adaptive") as http, peer() as client:
        assert (await client.call(http, key=KEY)).status_code == 201
        await client.next("session.created", timeout_s=TIMEOUT_S)
        client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(900, rate_hz=RATE_HZ)]))
        await client.next("output_audio_buffer.started", timeout_s=TIMEOUT_S)
        await client.mic.drained.wait()
        await asyncio.sleep(0.6)
        client.mic.say(np.concatenate([tone(300, rate_hz=RATE_HZ), quiet(700, rate_hz=RATE_HZ)]))
        await client.next("input_audio_buffer.committed", timeout_s=TIMEOUT_S)
        await client.next("output_audio_buffer.stopped", timeout_s=TIMEOUT_S)
        await asyncio.sleep(0.3)
        kinds = [e["type"] for e in client.seen]
        assert "output_audio_buffer.cleared" not in kinds
        assert "conversation.item.truncated" not in kinds
        assert kinds.count("response.created") == 1  # the "mm-hm" got no answer
        runs = voiced_runs(client.audio())
        assert len(runs) == 2  # the answer, a silence (the hold), the rest of the answer
        assert abs(sum(end - start for start, end in runs) - 2.28) < 0.12  # all of it, none of it twice
        assert runs[1][0] - runs[0][1] > 0.15


async def test_a_real_interruption_is_held_at_once_then_cleared(interruption: EngineSet) -> None:
    async with server(interruption, barge_in="adaptive") as http, peer() as client:
        assert (await client.call(http, key=KEY)).status_code == 201
        await client.next("session.created", timeout_s=TIMEOUT_S)
        client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(900, rate_hz=RATE_HZ)]))
        started = await client.next("output_audio_buffer.started", timeout_s=TIMEOUT_S)
        await client.mic.drained.wait()
        await asyncio.sleep(0.6)
        client.mic.say(tone(800, rate_hz=RATE_HZ))
        cleared = await client.next("output_audio_buffer.cleared", timeout_s=TIMEOUT_S)
        assert cleared["response_id"] == started["response_id"]
        truncated = await client.next("conversation.item.truncated", timeout_s=TIMEOUT_S)
        assert 300 < truncated["audio_end_ms"] < 2000
