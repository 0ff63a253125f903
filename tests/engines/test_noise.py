"""RNNoise on 16 kHz streams: it removes white noise from speech, keeps a fixed delay, mixes dry/wet."""

from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
import soxr

from openrealtime.engines.espeak_tts import EspeakSynthesizer
from openrealtime.engines.noise import NOISE_SAMPLE_RATE_HZ, RnnoiseStream, RnnoiseSuppressor

pytestmark = pytest.mark.real

CHUNK_SAMPLES = 320  # 20 ms, a typical client chunk
SILENCE_SAMPLES = NOISE_SAMPLE_RATE_HZ // 2
EDGE_SAMPLES = 7000  # the silent edges where only noise is measured (less than SILENCE_SAMPLES)
NOISE_RMS = 0.03
MAX_HELD_SAMPLES = 1200  # measured at most 1075 (67 ms) with soxr HQ, for any chunk size
SPEECH_PEAK = 0.5


@functools.cache
def clean_speech() -> np.ndarray:
    """Half a second of silence, about three seconds of espeak speech, half a second of silence."""
    text = "The quick brown fox jumps over the lazy dog. How are you today?"
    espeak = EspeakSynthesizer()
    audio = np.concatenate(list(espeak.synthesize(text, voice="en-us", stop=threading.Event())))
    speech = soxr.resample(audio, espeak.sample_rate_hz, NOISE_SAMPLE_RATE_HZ).astype(np.float32)
    speech *= SPEECH_PEAK / np.max(np.abs(speech))
    silence = np.zeros(SILENCE_SAMPLES, dtype=np.float32)
    return np.concatenate((silence, speech, silence))


def noisy_speech() -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(clean_speech().size) * NOISE_RMS
    return (clean_speech() + noise).astype(np.float32)


def run(stream: RnnoiseStream, audio: np.ndarray, chunk: int = CHUNK_SAMPLES) -> np.ndarray:
    return np.concatenate([stream.process(audio[i : i + chunk]) for i in range(0, audio.size, chunk)])


def aligned(stream: RnnoiseStream, out: np.ndarray, size: int) -> np.ndarray:
    """The output shifted back by the stream's delay, cut or zero-padded to ``size`` samples."""
    shifted = out[stream.delay_samples :]
    return np.pad(shifted, (0, max(0, size - shifted.size)))[:size]


def snr_db(audio: np.ndarray) -> float:
    """Speech-region power over noise-only-edge power."""
    edges = np.concatenate((audio[:EDGE_SAMPLES], audio[-EDGE_SAMPLES:]))
    middle = audio[SILENCE_SAMPLES:-SILENCE_SAMPLES]
    return float(10 * np.log10(np.mean(middle**2) / np.mean(edges**2)))


@pytest.fixture(scope="module")
def suppressor() -> RnnoiseSuppressor:
    return RnnoiseSuppressor()


@pytest.mark.parametrize(("kind", "min_gain_db"), [("far_field", 10.0), ("near_field", 8.0)])
def test_full_strength_improves_snr(suppressor: RnnoiseSuppressor, kind: str, min_gain_db: float) -> None:
    noisy = noisy_speech()
    stream = suppressor.new_stream(kind, 1.0)  # type: ignore[arg-type]
    out = aligned(stream, run(stream, noisy), noisy.size)
    assert snr_db(out) - snr_db(noisy) > min_gain_db
    # The speech survives: the output stays closer to the clean speech than the noisy input was.
    clean = clean_speech()
    assert np.sum((out - clean) ** 2) < 0.5 * np.sum((noisy - clean) ** 2)


def test_far_field_suppresses_more_than_near_field(suppressor: RnnoiseSuppressor) -> None:
    noisy = noisy_speech()
    gains = {}
    for kind in ("near_field", "far_field"):
        stream = suppressor.new_stream(kind, 1.0)  # type: ignore[arg-type]
        gains[kind] = snr_db(aligned(stream, run(stream, noisy), noisy.size))
    assert gains["far_field"] > gains["near_field"] + 1.0


def test_strength_zero_only_delays(suppressor: RnnoiseSuppressor) -> None:
    speech = clean_speech()
    stream = suppressor.new_stream("far_field", 0.0)
    assert stream.delay_samples == 320  # 20 ms at 16 kHz
    out = run(stream, speech)
    # The output count trails the input by what the resampling filters hold (under 70 ms) ...
    assert speech.size - MAX_HELD_SAMPLES < out.size <= speech.size
    # ... and its content is the input shifted by exactly delay_samples (soxr's round trip is clean
    # for band-limited speech).
    out = aligned(stream, out, speech.size)
    body = slice(0, speech.size - MAX_HELD_SAMPLES)
    residual = np.sum((out[body] - speech[body]) ** 2) / np.sum(speech[body] ** 2)
    assert residual < 1e-3


def test_strength_mixes_dry_and_wet(suppressor: RnnoiseSuppressor) -> None:
    noisy = noisy_speech()
    snrs = []
    for strength in (0.0, 0.5, 1.0):
        stream = suppressor.new_stream("far_field", strength)
        snrs.append(snr_db(aligned(stream, run(stream, noisy), noisy.size)))
    assert snrs[0] < snrs[1] < snrs[2]


def test_chunking_does_not_change_the_output(suppressor: RnnoiseSuppressor) -> None:
    noisy = noisy_speech()[:NOISE_SAMPLE_RATE_HZ]
    by_20ms = run(suppressor.new_stream("near_field", 0.8), noisy)
    by_odd = run(suppressor.new_stream("near_field", 0.8), noisy, chunk=997)
    size = min(by_20ms.size, by_odd.size)
    assert size > noisy.size - MAX_HELD_SAMPLES
    np.testing.assert_allclose(by_20ms[:size], by_odd[:size], atol=1e-4)


def test_streams_are_independent(suppressor: RnnoiseSuppressor) -> None:
    noisy = noisy_speech()[:NOISE_SAMPLE_RATE_HZ]
    alone = run(suppressor.new_stream("far_field", 1.0), noisy)
    first, second = suppressor.new_stream("far_field", 1.0), suppressor.new_stream("far_field", 1.0)
    interleaved_first, interleaved_second = [], []
    for i in range(0, noisy.size, CHUNK_SAMPLES):
        interleaved_first.append(first.process(noisy[i : i + CHUNK_SAMPLES]))
        interleaved_second.append(second.process(np.zeros(CHUNK_SAMPLES, dtype=np.float32)))
    np.testing.assert_array_equal(np.concatenate(interleaved_first), alone)
    first.close()
    second.close()


def test_empty_and_tiny_chunks(suppressor: RnnoiseSuppressor) -> None:
    stream = suppressor.new_stream("near_field", 1.0)
    assert stream.process(np.zeros(0, dtype=np.float32)).size == 0
    assert stream.process(np.zeros(10, dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize(("kind", "strength"), [("near_field", -0.1), ("far_field", 1.5), ("studio", 0.5)])
def test_bad_arguments(suppressor: RnnoiseSuppressor, kind: str, strength: float) -> None:
    with pytest.raises(ValueError, match=r"noise reduction type|strength"):
        suppressor.new_stream(kind, strength)  # type: ignore[arg-type]
