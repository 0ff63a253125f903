"""``bench calls`` against the loopback server with fake engines: levels of concurrent WebRTC calls
with the server's CPU, the idle cost per transport, the WebSocket/WebRTC comparison, and the results
written; the first audio heard is timed at the client on both transports."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.bench import calls
from openrealtime.bench.assistant import REALTIME_PATH
from openrealtime.bench.server_process import CpuMeter
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import quiet, tone

KEY = "sk-bench-key"


@pytest.fixture
def question(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every question is a 1 s tone (the energy VAD hears it), so no voice model is needed."""
    monkeypatch.setattr(calls, "speak", lambda _text: np.concatenate([tone(1000), quiet(200)]))
    monkeypatch.setattr(calls, "IDLE_SETTLE_S", 0.2)
    monkeypatch.setattr(calls, "IDLE_S", 0.5)


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("Paris is the capital of France."),
        synthesizers={"en": voice, "*": voice},
    )
    try:
        # Tones both ways: the echo canceller would take the callers' for the voice's echo (see
        # tests/webrtc/test_calls.py's server).
        async with running_server(Settings(port=0, api_key=KEY, echo_cancellation=False), engines=engines) as url:
            yield url
    finally:
        engines.close()


async def test_the_ear_times_the_first_audible_audio_after_a_moment() -> None:
    ear = calls.Ear()
    ear.hear(float_to_pcm16(np.zeros(480, np.float32)))  # the track's idle frames: not heard
    ear.hear(b"")
    assert ear.times == []
    ear.hear(float_to_pcm16(np.full(480, 0.1, np.float32)))
    [heard] = ear.times
    assert ear.first_after(heard - 1) == heard
    assert ear.first_after(heard + 1) is None
    # Audio that starts playing at 100 s with 240 samples (10 ms at 24 kHz) of silence first.
    ear.hear(float_to_pcm16(np.concatenate([np.zeros(240, np.float32), np.full(240, 0.1, np.float32)])), 100.0)
    assert ear.first_after(99.0) == pytest.approx(100.01)


async def test_a_websockets_delta_is_heard_after_what_was_queued_before_it() -> None:
    ear = calls.Ear()
    now = [50.0]
    player = calls._HeardPlayer(ear, lambda: now[0])
    player.play("item", float_to_pcm16(np.zeros(2400, np.float32)))  # 100 ms of a voice's leading silence
    player.play("item", float_to_pcm16(np.full(240, 0.1, np.float32)))
    assert ear.times == [pytest.approx(50.1)]


@pytest.mark.usefixtures("question")
async def test_levels_of_calls_report_latency_and_the_servers_cpu(base_url: str) -> None:
    meter = CpuMeter(os.getpid())  # the server runs in this process here
    run = await calls.measure_levels(base_url + REALTIME_PATH, 2, 1, KEY, meter)
    assert [lv["calls"] for lv in run.levels] == [1, 2]
    for level in run.levels:
        assert level["turns_answered"] == level["turns_asked"] == level["calls"]
        assert all(0 < s < 5 for s in level["first_audio_s"])
        # From speech_stopped (which comes after the VAD's wait) the figure is shorter, and it is the
        # one the targets are checked on.
        stops = [t["stopped_to_heard_s"] for t in level["turn_details"]]
        assert all(s is not None and s > 0 for s in stops)
        assert level["stopped_to_heard_p50_s"] < level["first_audio_p50_s"]
        assert level["server_cores_per_call"] > 0
        assert level["errors"] == 0
        assert {t["transport"] for t in level["turn_details"]} == {"webrtc"}
    assert run.idle_sessions == 2
    assert set(run.idle) == {"websocket", "webrtc"}
    table = calls.levels_table(run)
    assert "| 2 | 2/2 |" in table
    assert "server cores per session" in table


@pytest.mark.usefixtures("question")
async def test_the_same_questions_over_both_transports_side_by_side(base_url: str) -> None:
    rounds = await calls.measure_compare(base_url + REALTIME_PATH, ["first", "second"], KEY)
    assert [list(r) for r in rounds] == [["websocket", "webrtc"]] * 2
    for r in rounds:
        for transport, turn in r.items():
            assert turn.transport == transport
            assert turn.first_audio_s is not None
            assert turn.answer == "Paris is the capital of France."
    table = calls.compare_table(rounds)
    assert "| answered | 2/2 | 2/2 |" in table
    assert "− websocket, median over the same questions |  | +" in table


@pytest.mark.usefixtures("question")
async def test_the_command_writes_its_results(base_url: str, tmp_path: Path) -> None:
    code = await calls.run_calls_bench(
        url=base_url, out_dir=tmp_path, max_calls=1, turns=1, api_key=KEY, server_pid=os.getpid()
    )
    assert code == 0
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    assert results["kind"] == "calls"
    assert results["levels"][0]["turns_answered"] == 1
    assert set(results["idle_server_cores_per_session"]) == {"websocket", "webrtc"}
    assert (
        "end of speech" in (tmp_path / "summary.md").read_text()
        or "first audio heard" in (tmp_path / "summary.md").read_text()
    )


async def test_without_a_pid_for_a_given_server_no_cpu_is_reported(base_url: str) -> None:
    async with calls._target(base_url, KEY, None) as (target, meter):
        assert meter is None
        assert target.url.endswith(REALTIME_PATH)
    await asyncio.sleep(0)
