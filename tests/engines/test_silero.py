"""Silero VAD v6 streamed on onnxruntime: real model, real (synthesized) speech."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.audio.resample import StreamResampler
from openrealtime.bench.speech import speak
from openrealtime.engines.silero import FRAME_SAMPLES, SileroVad

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
