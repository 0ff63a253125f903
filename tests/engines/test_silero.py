"""Silero VAD v6 streamed on onnxruntime: real model, real (synthesized) speech."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.audio.resample import StreamResampler
from openrealtime.bench.speech import speak
from openrealtime.engines.silero import FRAME_SAMPLES, FRESH_AFTER_FRAMES, SileroVad
from openrealtime.session.vad import SpeechStart, TurnDetector

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def speech_16k(text: str) -> np.ndarray:
    return StreamResampler(24_000, 16_000).process(speak(text), last=True)


def test_speech_is_speech_and_silence_is_not(vad: SileroVad) -> None:
    stream = vad.new_stream()
    audio = np.concatenate([np.zeros(16_000, np.float32), speech_16k("Good morning, how are you today?")])
    n = audio.size // FRAME_SAMPLES * FRAME_SAMPLES
    probs = [stream.probability(audio[i : i + FRAME_SAMPLES]) for i in range(0, n, FRAME_SAMPLES)]
    silent, spoken = probs[:25], probs[40:]
    assert max(silent) < 0.1
    assert np.mean([p > 0.5 for p in spoken]) > 0.6


def test_frames_in_one_call_equal_frames_one_by_one(vad: SileroVad) -> None:
    audio = speech_16k("Please send me the report before the end of the week.")
    n = audio.size // FRAME_SAMPLES * FRAME_SAMPLES
    one, many = vad.new_stream(), vad.new_stream()
    singles = [one.probability(audio[i : i + FRAME_SAMPLES]) for i in range(0, n, FRAME_SAMPLES)]
    batched: list[float] = []
    for start in range(0, n, 3 * FRAME_SAMPLES):
        batched += many.probabilities(audio[start : min(start + 3 * FRAME_SAMPLES, n)])
    assert np.allclose(singles, batched, atol=1e-6)


def test_streams_are_independent(vad: SileroVad) -> None:
    a, b = vad.new_stream(), vad.new_stream()
    speech = speech_16k("Hello there.")[: 10 * FRAME_SAMPLES]
    a.probabilities(speech)
    silence = np.zeros(FRAME_SAMPLES, np.float32)
    assert b.probability(silence) == pytest.approx(vad.new_stream().probability(silence))


def test_wrong_frame_size_is_refused(vad: SileroVad) -> None:
    with pytest.raises(ValueError, match="512"):
        vad.new_stream().probability(np.zeros(100, np.float32))


def first_start_ms(vad: SileroVad, audio: np.ndarray, after: int) -> float | None:
    """Where the server's hysteresis starts a turn in ``audio`` at or after sample ``after``."""
    stream = vad.new_stream()
    detector = TurnDetector(sample_rate_hz=16_000, frame_samples=FRAME_SAMPLES, threshold=0.5, silence_duration_ms=500)
    n = audio.size // FRAME_SAMPLES * FRAME_SAMPLES
    for index, probability in enumerate(stream.probabilities(audio[:n])):
        for event in detector.feed(index * FRAME_SAMPLES, probability):
            if isinstance(event, SpeechStart) and event.sample >= after - 1_600:
                return (event.sample - after) / 16
    return None


def test_a_long_silence_does_not_dull_the_next_turn(vad: SileroVad) -> None:
    # Carried through a minute of silence Silero's state drifted so far that this interruption's
    # first word never reached 0.5 (its turn began ~600 ms in, at "can you"): the state is made
    # fresh after each second of quiet, so it starts as it does after a short silence.
    speech = speech_16k("Wait, can you say that again?")
    after_short = np.concatenate([np.zeros(3 * 16_000, np.float32), speech])
    after_long = np.concatenate([np.zeros(60 * 16_000, np.float32), speech])
    short = first_start_ms(vad, after_short, 3 * 16_000)
    long = first_start_ms(vad, after_long, 60 * 16_000)
    assert short is not None
    assert long is not None
    assert long < 200
    assert abs(long - short) <= 64


def test_the_fresh_state_is_a_new_streams_state(vad: SileroVad) -> None:
    # A stream made fresh in a silence scores what follows exactly as a new stream fed only the
    # silence since then, whether its frames come one at a time or many in one call.
    speech = speech_16k("Good morning.")
    silent_frames = 3 * FRESH_AFTER_FRAMES + 5
    audio = np.concatenate([np.zeros(silent_frames * FRAME_SAMPLES, np.float32), speech])
    n = audio.size // FRAME_SAMPLES * FRAME_SAMPLES
    since = (silent_frames % FRESH_AFTER_FRAMES) * FRAME_SAMPLES
    fresh = vad.new_stream().probabilities(audio[silent_frames * FRAME_SAMPLES - since : n])[since // FRAME_SAMPLES :]
    batched_stream, single_stream = vad.new_stream(), vad.new_stream()
    batched = batched_stream.probabilities(audio[:n])[silent_frames:]
    singles = [single_stream.probability(audio[i : i + FRAME_SAMPLES]) for i in range(0, n, FRAME_SAMPLES)]
    assert batched_stream.refreshed == single_stream.refreshed == 3
    assert np.allclose(batched, fresh, atol=1e-6)
    assert np.allclose(singles[silent_frames:], fresh, atol=1e-6)


def test_speech_and_short_pauses_keep_the_state(vad: SileroVad) -> None:
    pause = np.zeros(16_000 // 2, np.float32)
    stream = vad.new_stream()
    for text in ("Please send me the report", "before the end of the week."):
        stream.probabilities(np.concatenate([speech_16k(text), pause]))
    assert stream.refreshed == 0
