"""Smart Turn v3.2: our feature computation against faster-whisper's, and the real model's answers."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.engines.smart_turn import (
    N_FRAMES,
    N_MELS,
    WINDOW_SAMPLES,
    SmartTurn,
    fit_window,
    log_mel_features,
    mel_filterbank,
)

RATE_HZ = 16_000


def reference_features(audio: np.ndarray) -> np.ndarray:
    """faster-whisper's extractor on the window, normalized first as the model was trained."""
    from faster_whisper.feature_extractor import FeatureExtractor

    window = fit_window(audio)
    window = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    features: np.ndarray = FeatureExtractor(chunk_length=8)(window, padding=0)
    return features


def noisy_tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return (0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.5, 3.0, 8.0, 11.0])
def test_features_match_faster_whispers_extractor(seconds: float) -> None:
    audio = noisy_tone(seconds)
    ours = log_mel_features(audio)
    assert ours.shape == (N_MELS, N_FRAMES) == (80, 800)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_features(audio), atol=1e-4)


def test_the_window_is_the_last_eight_seconds_padded_in_front() -> None:
    short = np.ones(RATE_HZ, np.float32)
    window = fit_window(short)
    assert window.size == WINDOW_SAMPLES
    assert not window[: WINDOW_SAMPLES - RATE_HZ].any()
    assert window[-RATE_HZ:].all()
    long = np.arange(10 * RATE_HZ, dtype=np.float32)
    np.testing.assert_array_equal(fit_window(long), long[-WINDOW_SAMPLES:])
    assert fit_window(np.zeros(0, np.float32)).size == WINDOW_SAMPLES


def test_mel_filterbank_matches_whispers() -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    np.testing.assert_allclose(mel_filterbank(), FeatureExtractor.get_mel_filters(16_000, 400, n_mels=80), atol=1e-6)


# --- the real model --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()


def _at_16k(audio_24k: np.ndarray) -> np.ndarray:
    from openrealtime.audio.resample import StreamResampler

    return StreamResampler(24_000, RATE_HZ).process(audio_24k, last=True)


@pytest.mark.real
def test_a_finished_question_is_complete(model: SmartTurn) -> None:
    from openrealtime.bench.turn_clips import synthesize

    audio = np.concatenate([_at_16k(synthesize("What is the capital of France?", "piper", 1.0)), np.zeros(3200)])
    assert model.completion_probability(audio.astype(np.float32)) > 0.8


@pytest.mark.real
def test_a_sentence_cut_mid_phrase_is_incomplete(model: SmartTurn) -> None:
    from openrealtime.bench.turn_clips import make_clip

    # The whole sentence synthesized, then cut at the pause after "could" (its prosody goes on).
    clip = make_clip("I was wondering if you could | help me with my | homework.", "piper", 1.0, [600, 600])
    assert clip is not None
    pause_start_ms = clip.pauses_ms[0][0]
    audio = _at_16k(clip.audio[: (pause_start_ms + 200) * 24])
    assert model.completion_probability(audio) < 0.2


@pytest.mark.real
def test_the_pinned_file_is_found_and_verified() -> None:
    from openrealtime.engines import model_files

    path = model_files.smart_turn_onnx()
    assert path.name == "smart-turn-v3.2-cpu.onnx"
