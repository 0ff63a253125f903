"""Smart Turn v3.2: the probability that a speaker has finished their turn, from the audio alone.

The ONNX file (8.7 MB, BSD-2, by Daily) ships inside the ``pipecat-ai`` wheel, installed with
``--no-deps`` for the file only: pipecat's Python code is never imported. The model is a
Whisper-tiny-sized encoder with a classification head; it reads the last 8 s of the turn, the
pause so far included, as Whisper log-mel features (80 bands, 10 ms hop: ``(80, 800)``), and returns
a sigmoid probability that the turn is complete. It hears prosody (a falling pitch, a drawn-out
"and...") as well as the words, in many languages.

Its input is computed here (:func:`log_mel_features`), as its training pipeline (Hugging Face's
``WhisperFeatureExtractor`` with ``chunk_length=8`` and ``do_normalize=True``) did:

1. the audio is cut to its last 8 s, or padded with zeros *in front* to 8 s;
2. the whole 8 s buffer is normalized to zero mean and unit variance;
3. a centred STFT (400-sample periodic Hann window, hop 160, reflect padding) gives 801 power frames,
   the last of which is dropped; a Slaney mel filterbank (80 bands, 0-8 kHz) maps them to mels;
4. ``log10`` (floored at 1e-10), clamped to 8 decades below its maximum, then ``(x + 4) / 4``.

One ``InferenceSession`` serves every session of the process (``run`` is thread-safe); each call
runs on its caller's thread only (one intra-op thread, no spinning workers), so a decision costs one
core for its duration and nothing afterwards.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openrealtime.audio.types import Samples
from openrealtime.engines import model_files
from openrealtime.exceptions import EngineError

SAMPLE_RATE_HZ = 16_000
WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE_HZ
N_FFT = 400
HOP_SAMPLES = 160
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP_SAMPLES  # 800
MEL_FLOOR = 1e-10
DYNAMIC_RANGE_DECADES = 8.0
NORMALIZE_EPSILON = 1e-7
_INPUT = "input_features"


@dataclass(frozen=True)
class SmartTurnOptions:
    """Options of the Smart Turn engine.

    Attributes:
        model_path: A Smart Turn v3 ONNX file; ``None`` for the one pipecat-ai ships (sha256 pinned).
        threads: onnxruntime intra-op threads for one decision (one: the decision is short and
            several sessions may ask at once; each runs on its own caller's thread).
    """

    model_path: Path | None = None
    threads: int = 1


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    linear = 3.0 * hz / 200.0
    log_step = np.log(6.4) / 27.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), 200.0 * mel / 3.0)


@functools.cache
def mel_filterbank() -> npt.NDArray[np.float32]:
    """``(N_MELS, N_FFT // 2 + 1)``: triangular Slaney-normalized filters from 0 to 8 kHz."""
    edges_hz = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE_HZ / 2.0))), N_MELS + 2))
    bins_hz = np.linspace(0.0, SAMPLE_RATE_HZ / 2.0, N_FFT // 2 + 1)
    rising = (bins_hz[None, :] - edges_hz[:-2, None]) / np.diff(edges_hz)[:-1, None]
    falling = (edges_hz[2:, None] - bins_hz[None, :]) / np.diff(edges_hz)[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per band (Slaney)
    return filters.astype(np.float32)


@functools.cache
def _hann_window() -> npt.NDArray[np.float32]:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic, as torch.hann_window


def fit_window(audio: Samples) -> Samples:
    """The last ``WINDOW_S`` of ``audio`` (16 kHz), zero-padded in front to exactly that length."""
    if audio.size >= WINDOW_SAMPLES:
        return np.ascontiguousarray(audio[-WINDOW_SAMPLES:], dtype=np.float32)
    out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    if audio.size:
        out[-audio.size :] = audio
    return out


def log_mel_features(audio: Samples) -> npt.NDArray[np.float32]:
    """The model's input for ``audio`` (16 kHz mono float32, any length): ``(N_MELS, N_FRAMES)``."""
    window = fit_window(audio)
    window = (window - window.mean()) / np.sqrt(window.var() + NORMALIZE_EPSILON)
    half = N_FFT // 2
    padded = np.pad(window, (half, half), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_SAMPLES][:N_FRAMES]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)  # (frames, bins)
    mel = mel_filterbank() @ power.T
    log_mel = np.log10(np.maximum(mel, MEL_FLOOR))
    log_mel = np.maximum(log_mel, log_mel.max() - DYNAMIC_RANGE_DECADES)
    scaled: npt.NDArray[np.float32] = ((log_mel + 4.0) / 4.0).astype(np.float32)
    return scaled


class SmartTurn:
    """The shared Smart Turn model: :meth:`completion_probability` of a turn's audio so far."""

    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, options: SmartTurnOptions | None = None) -> None:
        import onnxruntime as ort

        options = options or SmartTurnOptions()
        path = options.model_path or model_files.smart_turn_onnx()
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # No busy-waiting worker threads between decisions (they would spin a core each).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"cannot load Smart Turn from {path}: {exc}", code="model_load_failed") from exc

    def completion_probability(self, audio: Samples) -> float:
        """The probability that the turn whose audio (16 kHz, the pause so far at its end) is
        ``audio`` is complete; only its last ``WINDOW_S`` are heard."""
        features = log_mel_features(audio)[None]
        try:
            (logits,) = self._session.run(None, {_INPUT: features})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"Smart Turn failed: {exc}", code="end_of_turn_failed") from exc
        return float(np.asarray(logits).reshape(-1)[0])
