"""``bench turns`` part 3: the speakerphone's room and the scoring (trials need a server)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.bench.echo import CHUNK, ECHO_GAIN, ROOM_DELAY_MS, EchoTrial, Speakerphone, summarize, table
from openrealtime.bench.speech import WIRE_RATE_HZ


def test_the_microphone_hears_the_speaker_late_and_quieter() -> None:
    phone = Speakerphone()
    click = np.zeros(CHUNK * 10, np.float32)
    click[0] = 0.5
    phone.receive({"delta": base64.b64encode(float_to_pcm16(click)).decode()})
    heard = np.concatenate([phone.tick() for _ in range(20)])
    lag = WIRE_RATE_HZ * ROOM_DELAY_MS // 1000
    assert np.flatnonzero(np.abs(heard) > 1e-3)[0] == lag
    assert abs(heard[lag] - 0.5 * ECHO_GAIN) < 1e-3
    assert phone.played_samples == click.size
    assert not phone.playing


def test_echo_scores_self_interruptions_per_minute_and_misses_apart_from_echo_stops() -> None:
    trials = [
        EchoTrial("m", False, 30.0, 1, True, False, None),
        EchoTrial("m", False, 30.0, 0, False, False, None),
        EchoTrial("m", True, 3.0, 0, True, True, 0.4),
        EchoTrial("m", True, 3.0, 0, False, False, None),
        EchoTrial("m", True, 1.0, 1, True, False, None),  # the echo stopped it before the user spoke
    ]
    [mode] = summarize(trials).values()
    assert mode["self_interruptions_per_minute"] == 1.0
    assert mode["missed_interruption_rate"] == 0.5
    assert mode["stopped_by_echo_before_the_user"] == 1
    assert "| m | 1.0 | 50% | 0.40 / 0.40 |" in table(summarize(trials))


@pytest.mark.real
async def test_over_the_real_models_the_answers_echo_does_not_interrupt_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With AEC3 installed (the optional pywebrtc-audio), an answer heard back at -6 dB through a
    speakerphone neither cancels itself nor gets answered, under OpenAI's immediate barge-in; a real
    interruption over the echo still cancels it."""
    pytest.importorskip("pywebrtc_audio")
    monkeypatch.setenv("OPENREALTIME_ECHO_CANCELLATION", "1")
    from openrealtime.bench import echo
    from openrealtime.bench.interruptions import ProbeSession
    from openrealtime.bench.target import server_target
    from openrealtime.bench.turns import REALTIME_PATH

    monkeypatch.setattr(echo, "TRIAL_MAX_S", 8.0)
    [user] = echo.interruption_voices(1)
    immediate = echo.MODES[0]
    async with (
        server_target(None, REALTIME_PATH, api_key=None) as target,
        ProbeSession.open(target.url, immediate, api_key=target.api_key) as session,
    ):
        alone = await echo.run_echo_trial(session, None)
        spoken = await echo.run_echo_trial(session, user)
    assert alone.played_s > 5
    assert alone.self_interruptions == 0  # seconds of its own echo, and the answer goes on
    # The user is not missed: the answer is cancelled and the interruption answered. (Whether the
    # echo alone cut this second answer first is not asserted: in 1 of 3 runs on 2026-12-05 the echo
    # of its first 0.3 s got through, before AEC3 had the room again; bench turns part 3 reports
    # that rate.)
    assert spoken.cancelled
    assert spoken.answered_after_onset
