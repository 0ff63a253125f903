"""TurnDetector: the start/stop hysteresis over frame probabilities, with exact sample positions."""

from __future__ import annotations

import math

import pytest

from openrealtime.session.vad import (
    HYSTERESIS,
    START_SPEECH_MS,
    SilenceStart,
    SpeechEnd,
    SpeechResumed,
    SpeechStart,
    TurnDetector,
    VadEvent,
    VadState,
)

RATE_HZ = 16_000
FRAME = 512  # Silero's frame at 16 kHz: 32 ms
SPEECH = 0.9
SILENCE = 0.05
THRESHOLD = 0.5


def detector(*, frame: int = FRAME, threshold: float = THRESHOLD, silence_duration_ms: int = 200) -> TurnDetector:
    return TurnDetector(
        sample_rate_hz=RATE_HZ,
        frame_samples=frame,
        threshold=threshold,
        silence_duration_ms=silence_duration_ms,
    )


def run(vad: TurnDetector, probabilities: list[float], *, first_frame: int = 0) -> list[tuple[int, VadEvent]]:
    """Feed contiguous frames; returns (frame index, event) for every event, in order."""
    out: list[tuple[int, VadEvent]] = []
    for i, probability in enumerate(probabilities, start=first_frame):
        out += [(i, event) for event in vad.feed(i * vad.frame_samples, probability)]
    return out


def speaking(vad: TurnDetector, frames: int = 4) -> None:
    """Bring ``vad`` into SPEECH with ``frames`` speech frames starting at frame 0."""
    events = run(vad, [SPEECH] * frames)
    assert [type(e) for _, e in events] == [SpeechStart]
    assert vad.state is VadState.SPEECH


# --- start --------------------------------------------------------------------------------------------


def test_speech_starts_after_64_ms_at_the_first_frame_of_the_run() -> None:
    vad = detector()
    assert run(vad, [SILENCE, SILENCE, SPEECH]) == []  # 32 ms of speech: not yet
    assert vad.state is VadState.SILENCE
    assert run(vad, [SPEECH], first_frame=3) == [(3, SpeechStart(2 * FRAME))]  # 64 ms: started at frame 2
    assert vad.state is VadState.SPEECH
    assert START_SPEECH_MS == 64


@pytest.mark.parametrize(("frame", "frames_needed"), [(512, 2), (480, 3), (320, 4), (256, 4), (1024, 1), (1600, 1)])
def test_the_start_needs_64_ms_whatever_the_frame_size(frame: int, frames_needed: int) -> None:
    assert frames_needed == math.ceil(START_SPEECH_MS * RATE_HZ / 1000 / frame)
    vad = detector(frame=frame)
    events = run(vad, [SILENCE] * 3 + [SPEECH] * 6)
    assert events == [(3 + frames_needed - 1, SpeechStart(3 * frame))]


def test_a_dip_below_threshold_restarts_the_run() -> None:
    vad = detector()
    # 0.4 is above the negative threshold but below the threshold: while silent it is not speech.
    events = run(vad, [SPEECH, 0.4, SPEECH, 0.49, SPEECH, SPEECH])
    assert events == [(5, SpeechStart(4 * FRAME))]


def test_the_threshold_itself_counts_as_speech() -> None:
    assert run(detector(), [THRESHOLD, THRESHOLD]) == [(1, SpeechStart(0))]
    assert run(detector(), [0.4999, 0.4999, 0.4999]) == []


def test_between_the_two_thresholds_never_starts_speech() -> None:
    assert run(detector(), [0.45] * 50) == []


def test_positions_are_absolute_sample_indices() -> None:
    vad = detector()
    base = 1_000_000  # frames far into the stream
    events = run(vad, [SPEECH, SPEECH], first_frame=base)
    assert events == [(base + 1, SpeechStart(base * FRAME))]


# --- hysteresis during speech ----------------------------------------------------------------------------


def test_during_speech_frames_down_to_threshold_minus_0_15_still_count() -> None:
    vad = detector()
    speaking(vad)
    assert HYSTERESIS == 0.15
    assert run(vad, [0.49, 0.4, 0.36, 0.35, 0.45] * 10, first_frame=4) == []  # all speech
    assert vad.state is VadState.SPEECH
    assert run(vad, [0.34], first_frame=54) == [(54, SilenceStart(54 * FRAME))]


@pytest.mark.parametrize(("threshold", "speech", "silence"), [(0.7, 0.56, 0.54), (0.3, 0.16, 0.14), (0.9, 0.76, 0.74)])
def test_the_negative_threshold_follows_the_configured_threshold(
    threshold: float, speech: float, silence: float
) -> None:
    vad = detector(threshold=threshold)
    assert run(vad, [threshold, threshold]) == [(1, SpeechStart(0))]
    assert run(vad, [speech], first_frame=2) == []
    assert run(vad, [silence], first_frame=3) == [(3, SilenceStart(3 * FRAME))]


def test_the_negative_threshold_has_a_floor() -> None:
    vad = detector(threshold=0.1)  # 0.1 - 0.15 < 0: the floor of 0.01 applies
    assert vad.negative_threshold == 0.01
    assert run(vad, [0.1, 0.1]) == [(1, SpeechStart(0))]
    assert run(vad, [0.02], first_frame=2) == []
    assert run(vad, [0.005], first_frame=3) == [(3, SilenceStart(3 * FRAME))]


# --- pauses, resumption and the end of the turn ------------------------------------------------------


def test_a_pause_then_speech_again_is_silence_start_then_speech_resumed() -> None:
    vad = detector()
    speaking(vad)
    events = run(vad, [SILENCE, SILENCE, 0.4, SPEECH], first_frame=4)
    assert events == [(4, SilenceStart(4 * FRAME)), (6, SpeechResumed(6 * FRAME))]
    assert vad.state is VadState.SPEECH


def test_silence_start_is_reported_once_per_pause() -> None:
    vad = detector(silence_duration_ms=1_000)
    speaking(vad)
    events = run(vad, [SILENCE] * 10, first_frame=4)
    assert events == [(4, SilenceStart(4 * FRAME))]


@pytest.mark.parametrize(
    ("silence_ms", "silent_frames"),
    [(200, 7), (500, 16), (96, 3), (100, 4), (32, 1), (1, 1)],
)
def test_speech_end_comes_exactly_when_the_pause_reaches_silence_duration(silence_ms: int, silent_frames: int) -> None:
    assert silent_frames == max(1, math.ceil(silence_ms * RATE_HZ / 1000 / FRAME))
    vad = detector(silence_duration_ms=silence_ms)
    speaking(vad, frames=10)
    pause = 10 * FRAME
    events = run(vad, [SILENCE] * (silent_frames + 5), first_frame=10)
    expected: list[tuple[int, VadEvent]] = [(10, SilenceStart(pause))]
    expected.append((10 + silent_frames - 1, SpeechEnd(speech_end=pause, sample=pause + silent_frames * FRAME)))
    assert events == expected
    assert vad.state is VadState.SILENCE


def test_zero_silence_duration_ends_on_the_first_silent_frame() -> None:
    vad = detector(silence_duration_ms=0)
    speaking(vad)
    events = vad.feed(4 * FRAME, SILENCE)
    assert events == [SilenceStart(4 * FRAME), SpeechEnd(speech_end=4 * FRAME, sample=5 * FRAME)]


def test_speech_resumed_restarts_the_pause_count() -> None:
    vad = detector()  # 200 ms: 7 silent frames
    speaking(vad)
    events = run(vad, [SILENCE] * 6 + [SPEECH] + [SILENCE] * 7, first_frame=4)
    assert events == [
        (4, SilenceStart(4 * FRAME)),
        (10, SpeechResumed(10 * FRAME)),
        (11, SilenceStart(11 * FRAME)),
        (17, SpeechEnd(speech_end=11 * FRAME, sample=18 * FRAME)),
    ]


def test_after_the_end_a_new_turn_needs_64_ms_again() -> None:
    vad = detector()
    speaking(vad)
    run(vad, [SILENCE] * 7, first_frame=4)  # ends at frame 10
    assert vad.state is VadState.SILENCE
    assert run(vad, [SPEECH], first_frame=11) == []
    assert run(vad, [0.4, SPEECH, SPEECH], first_frame=12) == [(14, SpeechStart(13 * FRAME))]


def test_a_whole_turn() -> None:
    vad = detector(silence_duration_ms=100)  # 4 silent frames
    probabilities = [SILENCE] * 5 + [SPEECH] * 8 + [0.2, 0.4, 0.8] + [SPEECH] * 4 + [SILENCE] * 6 + [SPEECH] * 2
    assert run(vad, probabilities) == [
        (6, SpeechStart(5 * FRAME)),
        (13, SilenceStart(13 * FRAME)),
        (14, SpeechResumed(14 * FRAME)),
        (20, SilenceStart(20 * FRAME)),
        (23, SpeechEnd(speech_end=20 * FRAME, sample=24 * FRAME)),
        (27, SpeechStart(26 * FRAME)),
    ]


# --- configure and reset -----------------------------------------------------------------------------


def test_configure_takes_effect_on_the_next_frame() -> None:
    vad = detector(silence_duration_ms=1_000)
    speaking(vad)
    run(vad, [SILENCE] * 3, first_frame=4)  # a pause of 3 frames is under way
    vad.configure(threshold=THRESHOLD, silence_duration_ms=200)  # 7 frames
    events = run(vad, [SILENCE] * 4, first_frame=7)
    assert events == [(10, SpeechEnd(speech_end=4 * FRAME, sample=11 * FRAME))]


def test_configure_moves_both_thresholds() -> None:
    vad = detector()
    vad.configure(threshold=0.8, silence_duration_ms=200)
    assert (vad.threshold, vad.negative_threshold, vad.silence_samples) == (0.8, pytest.approx(0.65), 3_200)
    assert run(vad, [0.7, 0.7, 0.7]) == []


def test_reset_forgets_speech_and_pauses() -> None:
    vad = detector()
    speaking(vad)
    run(vad, [SILENCE] * 3, first_frame=4)
    vad.reset()
    assert vad.state is VadState.SILENCE
    assert run(vad, [SILENCE] * 20, first_frame=7) == []  # no SpeechEnd for the forgotten pause
    assert run(vad, [SPEECH, SPEECH], first_frame=27) == [(28, SpeechStart(27 * FRAME))]


def test_reset_forgets_a_run_that_had_not_started_yet() -> None:
    vad = detector()
    assert run(vad, [SPEECH]) == []
    vad.reset()
    assert run(vad, [SPEECH], first_frame=1) == []  # the run begins again at frame 1
    assert run(vad, [SPEECH], first_frame=2) == [(2, SpeechStart(FRAME))]
