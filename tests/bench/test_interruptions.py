"""``bench turns`` part 2: the probes and the scoring (the trials themselves need a server)."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.bench.interruptions import (
    MODES,
    WIRE_RATE_HZ,
    Probe,
    Trial,
    cough,
    summarize,
    table,
)


def test_a_cough_is_short_loud_bursts_of_noise() -> None:
    one, three = cough(1, seed=1), cough(3, seed=3)
    assert 0.2 < one.size / WIRE_RATE_HZ < 0.45
    assert three.size > 2.5 * one.size
    assert np.abs(one).max() > 0.1
    assert one.dtype == np.float32


def test_a_probe_knows_where_its_voice_begins_and_ends() -> None:
    audio = np.zeros(WIRE_RATE_HZ, np.float32)
    audio[2400:9600] = 0.3  # 100 ms to 400 ms
    probe = Probe("backchannel", "Yeah.", "test", audio)
    assert probe.onset_ms == 100
    assert 299 <= probe.voiced_ms <= 300


def _trial(
    mode: str, kind: str, *, cancelled: bool, silence: float | None = None, ms: int = 400, resumed: bool = False
) -> Trial:
    return Trial(mode, kind, "x", "v", ms, True, cancelled, False, 0.1, silence, 0.12, resumed and not cancelled)


def test_summary_counts_false_barge_ins_misses_and_time_to_silence() -> None:
    trials = [
        _trial("a", "backchannel", cancelled=True),
        _trial("a", "backchannel", cancelled=False, resumed=True),
        _trial("a", "cough", cancelled=False),
        _trial("a", "interruption", cancelled=True, silence=0.3),
        _trial("a", "interruption", cancelled=False),
        Trial("a", "backchannel", "x", "v", 400, False, True, False, None, None),  # answer already done
    ]
    [mode] = summarize(trials).values()
    assert mode["false_barge_in_rate"] == 1 / 3
    assert mode["backchannel_false_barge_in_rate"] == 0.5
    assert mode["cough_false_barge_in_rate"] == 0.0
    assert mode["missed_interruption_rate"] == 0.5
    assert mode["onset_to_silence_s"]["p50"] == 0.3
    assert mode["answer_already_done"] == 1
    assert mode["onset_to_client_silence_s"]["p50"] == 0.12
    assert mode["not_interruptions_resumed_rate"] == 0.5  # the backchannel resumed, the cough did not
    assert "| a | 33% | 50% | 0% | 50% | 0.30 / 0.30 | 0.10 / 0.10 | 0.12 / 0.12 | 50% |" in table(summarize(trials))


def test_our_client_pauses_at_speech_started_and_resumes_at_a_backchannels_verdict() -> None:
    from openrealtime.bench.interruptions import PausingClient

    immediate, adaptive = MODES
    client = PausingClient(adaptive)
    created = {"id": "resp_1", "output_modalities": ["audio"], "conversation_id": "conv_1"}
    client.feed({"type": "response.created", "response": created}, 1.0)
    client.feed({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u"}, 2.0)
    assert client.player.paused
    client.feed({"type": "input_audio_buffer.speech_judged", "item_id": "u", "interruption": False}, 2.5)
    assert (client.silent_at, client.resumed_at) == ([2.0], [2.5])
    assert client.first_after(client.silent_at, 1.9) == pytest.approx(0.1)
    strict = PausingClient(immediate)
    strict.feed({"type": "response.created", "response": created}, 1.0)
    strict.feed({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u"}, 2.0)
    assert (strict.silent_at, strict.player.paused) == ([2.0], False)  # stopped, not paused


def test_both_modes_are_valid_turn_detection() -> None:
    from openrealtime.protocol.config import AudioInput

    assert [AudioInput.model_validate({"turn_detection": m.turn_detection}).turn_detection for m in MODES]


@pytest.mark.real
async def test_over_the_real_models_a_backchannel_goes_on_and_an_interruption_stops_the_answer() -> None:
    """The real server (Silero, Whisper, the LLM, piper) and synthesized speech over a long answer:
    OpenAI's immediate barge-in cancels at "Yeah."; the adaptive one lets the answer go on, and still
    cancels at "Wait, can you say that again?"; our client pauses for both and resumes after "Yeah."."""
    from openrealtime.bench.interruptions import ProbeSession
    from openrealtime.bench.target import server_target
    from openrealtime.bench.turn_clips import synthesize
    from openrealtime.bench.turns import REALTIME_PATH

    yeah = Probe("backchannel", "Yeah.", "piper@1.0", synthesize("Yeah.", "piper", 1.0))
    wait = Probe("interruption", "Wait", "piper@1.0", synthesize("Wait, can you say that again?", "piper", 1.0))
    immediate, adaptive = MODES
    async with server_target(None, REALTIME_PATH, api_key=None) as target:
        async with ProbeSession.open(target.url, immediate, api_key=target.api_key) as session:
            strict = await session.run(yeah)
        async with ProbeSession.open(target.url, adaptive, api_key=target.api_key) as session:
            went_on = await session.run(yeah)
            stopped = await session.run(wait)
    assert strict.answer_in_progress
    assert strict.cancelled
    assert went_on.answer_in_progress
    assert not went_on.barged_in
    assert stopped.answer_in_progress
    assert stopped.cancelled
    assert stopped.onset_to_silence_s is not None
    # Our client, told the verdicts (the session named barge_in): paused at speech_started both
    # times, resumed after "Yeah.", and silent long before the cancel of "Wait, ...".
    assert went_on.resumed
    assert went_on.onset_to_client_silence_s is not None
    assert not stopped.resumed
    assert stopped.onset_to_client_silence_s is not None
    assert stopped.onset_to_client_silence_s < stopped.onset_to_silence_s
    assert strict.onset_to_client_silence_s is not None  # OpenAI's: it stops at speech_started
