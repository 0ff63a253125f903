"""RNNoise noise suppression for 16 kHz float32 input audio (OpenAI's ``input_audio_noise_reduction``).

This module owns :class:`RnnoiseSuppressor` and its per-stream state :class:`RnnoiseStream`. RNNoise
(the ``librnnoise`` that the ``pyrnnoise`` wheel ships, called through ctypes) works on 10 ms frames at
48 kHz, so each stream carries two stateful soxr resamplers (16 -> 48 kHz and back), a frame
accumulator and one RNNoise state. ``strength`` mixes the denoised (wet) signal with the time-aligned
original (dry); the profile sets how much of the wet signal full strength means.

The library is loaded straight from the package directory instead of through ``import pyrnnoise``:
that package's ``__init__`` imports ``audiolab`` and PyAV (0.6 s, unused here) and its frame helper
round-trips every frame through int16.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from dataclasses import dataclass
from typing import Literal

import numpy as np

from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import EMPTY, Samples
from openrealtime.engines.model_files import package_dir
from openrealtime.exceptions import EngineError

NOISE_SAMPLE_RATE_HZ = 16_000
RNNOISE_SAMPLE_RATE_HZ = 48_000
RNNOISE_FRAME_SAMPLES = 480  # 10 ms at 48 kHz, fixed by the model
#: RNNoise 0.2's output lags its input by two frames (measured by cross-correlation: 960 samples).
RNNOISE_DELAY_FRAMES = 2
RNNOISE_DELAY_SAMPLES = RNNOISE_DELAY_FRAMES * RNNOISE_FRAME_SAMPLES
_PCM16_SCALE = 32768.0  # RNNoise expects float samples on the int16 scale

NoiseKind = Literal["near_field", "far_field"]


@dataclass(frozen=True)
class NoiseProfile:
    """How a microphone kind is treated.

    Attributes:
        max_wet: Fraction of the denoised signal at ``strength=1``; the rest is the original. Close-talk
            microphones have little noise to remove, so keeping some of the original hides RNNoise's
            artefacts on speech; far-field microphones get the full suppression.
    """

    max_wet: float


PROFILES: dict[str, NoiseProfile] = {
    "near_field": NoiseProfile(max_wet=0.9),
    "far_field": NoiseProfile(max_wet=1.0),
}


class _Rnnoise:
    """The ctypes binding; RNNoise functions are reentrant per state, so no lock is needed."""

    def __init__(self) -> None:
        path = package_dir("pyrnnoise") / "librnnoise.so"
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise EngineError(f"cannot load RNNoise from {path}: {exc}", code="model_not_installed") from exc
        lib.rnnoise_create.argtypes = (ctypes.c_void_p,)
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = (ctypes.c_void_p,)
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_frame_size.argtypes = ()
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        lib.rnnoise_process_frame.argtypes = (
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_float),
            ctypes.POINTER(ctypes.c_float),
        )
        lib.rnnoise_process_frame.restype = ctypes.c_float
        frame = lib.rnnoise_get_frame_size()
        if frame != RNNOISE_FRAME_SAMPLES:
            raise EngineError(f"unexpected RNNoise frame size {frame}", code="model_not_installed")
        self.lib = lib


_LOAD_LOCK = threading.Lock()
_rnnoise: _Rnnoise | None = None


def _library() -> _Rnnoise:
    global _rnnoise
    with _LOAD_LOCK:
        if _rnnoise is None:
            _rnnoise = _Rnnoise()
        return _rnnoise


class RnnoiseStream:
    """One stream's denoiser.

    Output sample ``k`` is input sample ``k - delay_samples`` (20 ms, RNNoise's own delay), denoised.
    Besides that fixed shift, the most recent input (at most about 67 ms with soxr's HQ filters,
    whatever the chunk size) is held inside the resamplers and the frame accumulator until more audio
    arrives, so one call may return fewer or more samples than it was given.

    Not thread safe: one stream belongs to one session, which feeds it in order.
    """

    def __init__(self, rnnoise: _Rnnoise, wet: float) -> None:
        self._lib = rnnoise.lib
        self._wet = np.float32(wet)
        self._dry = np.float32(1.0 - wet)
        self._up = StreamResampler(NOISE_SAMPLE_RATE_HZ, RNNOISE_SAMPLE_RATE_HZ)
        self._down = StreamResampler(RNNOISE_SAMPLE_RATE_HZ, NOISE_SAMPLE_RATE_HZ)
        self._pending = EMPTY  # 48 kHz samples short of a whole frame (< RNNOISE_FRAME_SAMPLES)
        # The dry signal is delayed by RNNoise's own delay so that the dry/wet mix is time aligned.
        self._dry_line = np.zeros(RNNOISE_DELAY_SAMPLES + RNNOISE_FRAME_SAMPLES, dtype=np.float32)
        self._frame = np.zeros(RNNOISE_FRAME_SAMPLES, dtype=np.float32)
        self._frame_ptr = self._frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._state = self._lib.rnnoise_create(None)
        if not self._state:
            raise EngineError("RNNoise could not allocate a state", code="noise_reduction_failed")
        self._finalizer = weakref.finalize(self, self._lib.rnnoise_destroy, self._state)
        #: Output lag at 16 kHz; soxr's streaming resamplers compensate their own filter delay.
        self.delay_samples = RNNOISE_DELAY_SAMPLES * NOISE_SAMPLE_RATE_HZ // RNNOISE_SAMPLE_RATE_HZ
        self.speech_probability = 0.0  # RNNoise's voice activity estimate of the last frame

    def process(self, samples: Samples) -> Samples:
        """Denoise a chunk of 16 kHz float32 audio; returns what is ready (may be shorter or empty)."""
        upsampled = self._up.process(samples)
        if self._pending.size:
            upsampled = np.concatenate((self._pending, upsampled))
        whole = upsampled.size - upsampled.size % RNNOISE_FRAME_SAMPLES
        self._pending = upsampled[whole:].copy()
        if whole == 0:
            return EMPTY
        out = np.empty(whole, dtype=np.float32)
        for start in range(0, whole, RNNOISE_FRAME_SAMPLES):
            frame = upsampled[start : start + RNNOISE_FRAME_SAMPLES]
            out[start : start + RNNOISE_FRAME_SAMPLES] = self._denoise(frame)
        return self._down.process(out)

    def _denoise(self, frame: Samples) -> Samples:
        line = self._dry_line
        line[:-RNNOISE_FRAME_SAMPLES] = line[RNNOISE_FRAME_SAMPLES:]
        line[-RNNOISE_FRAME_SAMPLES:] = frame
        dry = line[:RNNOISE_FRAME_SAMPLES]
        if self._wet == 0:
            return dry.copy()
        np.multiply(frame, _PCM16_SCALE, out=self._frame)
        self.speech_probability = float(self._lib.rnnoise_process_frame(self._state, self._frame_ptr, self._frame_ptr))
        wet = self._frame / np.float32(_PCM16_SCALE)
        return (self._wet * wet + self._dry * dry).astype(np.float32)

    def close(self) -> None:
        """Free the RNNoise state now instead of at garbage collection."""
        self._finalizer()


class RnnoiseSuppressor:
    """A :class:`~openrealtime.contracts.NoiseSuppressor` for 16 kHz streams.

    Cheap to share: it only holds the loaded library; each :meth:`new_stream` allocates its own state
    (about 100 KB) and costs about 6 % of one core in real time.

    Raises:
        EngineError: If ``pyrnnoise``'s library is not installed or cannot be loaded.
    """

    sample_rate_hz = NOISE_SAMPLE_RATE_HZ

    def __init__(self) -> None:
        self._rnnoise = _library()

    def new_stream(self, kind: NoiseKind, strength: float) -> RnnoiseStream:
        """A denoiser for one audio stream.

        Args:
            kind: ``"near_field"`` (headset, close-talk) or ``"far_field"`` (laptop, room microphone).
            strength: 0 leaves the audio as it is (only delayed), 1 applies the profile's full suppression.

        Raises:
            ValueError: If ``kind`` is unknown or ``strength`` is outside [0, 1].
        """
        if kind not in PROFILES:
            raise ValueError(f"unknown noise reduction type {kind!r}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be within [0, 1], got {strength}")
        return RnnoiseStream(self._rnnoise, PROFILES[kind].max_wet * strength)
