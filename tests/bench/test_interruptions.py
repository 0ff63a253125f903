"""``bench turns`` part 2: the probes and the scoring (the trials themselves need a server)."""

from __future__ import annotations

import numpy as np

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


def _trial(mode: str, kind: str, *, cancelled: bool, silence: float | None = None, ms: int = 400) -> Trial:
    return Trial(mode, kind, "x", "v", ms, True, cancelled, False, 0.1, silence)


def test_summary_counts_false_barge_ins_misses_and_time_to_silence() -> None:
    trials = [
        _trial("a", "backchannel", cancelled=True),
        _trial("a", "backchannel", cancelled=False),
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
    assert "| a | 33% | 50% | 0% | 50% | 0.30 / 0.30 |" in table(summarize(trials))


def test_both_modes_are_valid_turn_detection() -> None:
    from openrealtime.protocol.config import AudioInput

    assert [AudioInput.model_validate({"turn_detection": m.turn_detection}).turn_detection for m in MODES]
