"""The echo AEC3 lets through, silenced (session/echo_gate.py): the room's delay found from the input
and the reference, the echo's frames silenced, a voice over it passed."""

from __future__ import annotations

import numpy as np

from openrealtime.session.echo import RATE_HZ, EchoReference
from openrealtime.session.echo_gate import FRAME, EchoGate

CHUNK = 2 * FRAME  # the canceller's 20 ms


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise under a syllable-rate envelope: like speech to a correlation, unlike any other such."""
    rng = np.random.default_rng(seed)
    n = int(RATE_HZ * seconds)
    envelope = np.repeat(rng.uniform(0, 1, n // 800 + 1) ** 2, 800)[:n]
    return (0.1 * rng.standard_normal(n) * envelope).astype(np.float32)


def room(far: np.ndarray, delay: int) -> np.ndarray:
    """The far end heard back at -6 dB after ``delay`` samples, with a reflection 30 ms later."""
    near = np.zeros_like(far)
    near[delay:] += 0.5 * far[:-delay]
    near[delay + 480 :] += 0.12 * far[: -(delay + 480)]
    return near


def run(gate: EchoGate, near: np.ndarray, far: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [gate.process(near[i : i + CHUNK], far[i : i + CHUNK], near[i : i + CHUNK]) for i in range(0, near.size, CHUNK)]
    )


def test_the_rooms_delay_is_found_and_the_echo_alone_is_silenced() -> None:
    far = speechlike(3, seed=1)
    near = room(far, delay=3040)  # 190 ms: the player's start, the room
    gate = EchoGate()
    out = run(gate, near, far)
    assert gate.delays[0] == 3040
    later = slice(RATE_HZ, None)  # once the delay is found (a quarter to half a second in)
    assert np.mean(out[later] ** 2) < 0.05 * np.mean(near[later] ** 2)


def test_a_voice_over_the_echo_passes() -> None:
    far = speechlike(4, seed=1)
    user = speechlike(4, seed=2)
    near = room(far, delay=3040)
    near[2 * RATE_HZ :] += user[2 * RATE_HZ :]  # the user speaks from 2 s on, at the answer's level
    gate = EchoGate()
    out = run(gate, near, far)
    spoken = slice(2 * RATE_HZ + 800, None)
    assert np.mean(out[spoken] ** 2) > 0.7 * np.mean(near[spoken] ** 2)


def test_a_new_answer_placed_with_another_lead_is_silenced_within_tens_of_milliseconds() -> None:
    """The delay a new answer's echo comes back with moves when the server places it with another lead
    over the listener; the gate looks again as soon as the input goes unexplained."""
    far = speechlike(5, seed=4)
    far[2 * RATE_HZ : 3 * RATE_HZ] = 0  # the first answer ends; the second starts at 3 s
    near = room(far, delay=3040)
    later = room(far, delay=6240)  # 390 ms: placed 200 ms further ahead of the listener
    near[3 * RATE_HZ :] = later[3 * RATE_HZ :]
    gate = EchoGate()
    out = run(gate, near, far)
    onset = 3 * RATE_HZ + 6240
    assert 6240 in gate.delays
    settled = slice(onset + RATE_HZ // 20, onset + RATE_HZ)  # from 50 ms after its echo began
    assert np.mean(out[settled] ** 2) < 0.05 * np.mean(near[settled] ** 2)


def test_before_the_delay_is_known_and_in_silence_nothing_is_touched() -> None:
    gate = EchoGate()
    quiet = np.zeros(CHUNK, np.float32)
    voice = speechlike(0.02, seed=3)
    np.testing.assert_array_equal(gate.process(voice, quiet, voice), voice)  # no reference yet
    assert gate.delays == []
    assert gate.silenced_frames == 0


def test_after_the_listener_runs_dry_the_next_speech_starts_where_it_is_placed() -> None:
    """The reference's resampler holds a few milliseconds back; they end the speech before the gap, or
    they would start the next piece and push it late by that much (an echo delay that jumps)."""
    reference = EchoReference()
    reference.play(np.full(2400, 0.5, np.float32), 24_000, now=0, item_id="item_a")  # 100 ms at 24 kHz
    reference.play(np.full(2400, 0.25, np.float32), 24_000, now=8000, item_id="item_a")  # after a gap
    got = reference.take(0, 8000 + 1600)
    assert np.allclose(got[400:1200], 0.5, atol=0.02)  # the first piece whole, where it played
    assert abs(np.flatnonzero(np.abs(got[:8000]) > 0.1)[-1] - 1600) < 40
    assert np.allclose(got[8400:9200], 0.25, atol=0.02)  # the second from where it was placed
    assert np.abs(got[8000:8400]).max() < 0.3  # with none of the first's tail in it


def test_when_the_listener_reaches_the_end_of_what_was_sent_the_last_milliseconds_are_on_the_reference() -> None:
    reference = EchoReference()
    reference.play(np.full(2400, 0.5, np.float32), 24_000, now=0)  # 100 ms, part of it held back
    assert reference.end < 1600
    got = reference.take(0, 3200)  # the canceller passes its end: the listener runs dry there
    assert reference.end == 1600
    assert np.allclose(got[400:1560], 0.5, atol=0.02)
    assert not got[1700:].any()


def test_frames_aec3_already_cancelled_are_left_as_it_made_them() -> None:
    far = speechlike(3, seed=1)
    near = room(far, delay=3040)
    gate = EchoGate()
    cancelled = 0.3 * near  # AEC3 took 10 dB out everywhere: what is left is its to pass
    out = np.concatenate(
        [
            gate.process(near[i : i + CHUNK], far[i : i + CHUNK], cancelled[i : i + CHUNK])
            for i in range(0, near.size, CHUNK)
        ]
    )
    assert gate.delays[0] == 3040  # it still follows the room
    np.testing.assert_array_equal(out, cancelled)
