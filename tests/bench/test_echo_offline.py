"""``python -m openrealtime.bench.echo_offline``: the schedule, and a session through a fake canceller
and VAD (the real AEC3 and Silero run in the real test at the end)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from openrealtime.bench.echo_offline import Arrival, Session, run_session, schedule
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.session.echo import EchoCanceller

FRAME = 512


class LoudnessVad:
    """Speech wherever a frame is loud: enough to see where the canceller let something through."""

    frame_samples = FRAME

    def new_stream(self) -> LoudnessVad:
        return self

    def probabilities(self, audio: np.ndarray) -> list[float]:
        frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
        return [1.0 if float(np.sqrt(np.mean(f**2))) > 0.01 else 0.0 for f in frames]


class PassThrough:
    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return near


class RemovesAll:
    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return np.zeros_like(near)


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * WIRE_RATE_HZ)) / WIRE_RATE_HZ
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_clauses_arrive_in_order_answer_by_answer_and_the_same_for_a_seed() -> None:
    answers = [[tone(0.5), tone(0.4)], [tone(0.3)]]
    first = schedule(answers, random.Random(3))
    again = schedule(answers, random.Random(3))
    assert [a.at_ms for a in first] == [a.at_ms for a in again]
    assert [a.item_id for a in first] == ["item_0", "item_0", "item_1"]
    assert all(b.at_ms > a.at_ms for a, b in itertools.pairwise(first))
    assert first[2].at_ms - first[1].at_ms > 900  # the first answer played whole, then a pause


def transparent() -> EchoCanceller:
    """A canceller that removes nothing, its gate off."""
    aec = EchoCanceller(0, aec=PassThrough())
    aec.gate.process = lambda near, far, out: out  # type: ignore[method-assign]
    return aec


def with_the_user(canceller: EchoCanceller) -> Session:
    """A 3 s quiet answer with the user loud over it from 1.5 s, through ``canceller``."""
    return run_session(
        [Arrival(100, tone(3.0, 0.1), "item_0")],
        LoudnessVad(),
        random.Random(0),
        jitter_ms=0,
        end_ms=3000,
        user=tone(0.6, 0.5),
        user_at_ms=1500,
        canceller=canceller,
    )


def test_a_canceller_that_removes_nothing_lets_the_echo_start_a_turn() -> None:
    arrivals = [Arrival(100, tone(1.0), "item_0")]
    heard = run_session(arrivals, LoudnessVad(), random.Random(0), jitter_ms=0, end_ms=2000, canceller=transparent())
    assert heard.starts_ms
    assert 200 <= heard.starts_ms[0] <= 400


def test_the_user_is_heard_where_they_speak_and_what_the_canceller_took_from_them_is_measured() -> None:
    kept = with_the_user(EchoCanceller(0, aec=RemovesAll()))
    assert kept.starts_ms == []  # everything removed: the user too
    assert kept.user_frames_removed_db
    assert min(kept.user_frames_removed_db) > 60
    passed = with_the_user(transparent())
    assert np.median(passed.user_frames_removed_db) == pytest.approx(0.0, abs=0.5)


def test_a_longer_start_over_the_echo_lets_a_short_burst_of_it_pass() -> None:
    """``--start-over-echo-ms``: while the voice may come back, a turn needs that much speech."""
    burst = [Arrival(100, tone(0.05), "item_0")]  # 50 ms of voice: its echo, with the reflections, a little longer

    def heard(over_echo_ms: int) -> Session:
        vad, rng = LoudnessVad(), random.Random(0)
        return run_session(
            burst, vad, rng, jitter_ms=0, end_ms=1500, canceller=transparent(), start_over_echo_ms=over_echo_ms
        )

    assert heard(64).starts_ms
    assert heard(192).starts_ms == []


@pytest.mark.real
def test_real_canceller_offline_reports_echo_turns_and_the_user() -> None:
    from openrealtime.bench.echo_offline import measure

    result = measure(1, 40, users=1, user_answer=0)
    assert result["user"]["interruptions"] == 1
    assert result["user_over_answer"] == 1
    assert isinstance(result["echo_turns"], int)
    assert result["user_frames_removed_db"] is not None
