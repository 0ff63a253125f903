"""The input audio front end of every session kind: samples at any rate -> 16 kHz float32 samples.

Audio arrives decoded (the edge turns wire bytes into samples, see :mod:`openrealtime.runtime.wire`)
at its own rate: 24 or 8 kHz from a WebSocket, whatever a media transport delivers. It is resampled
with one stateful resampler per input rate (never per chunk: that clicks at every edge), then
denoised when the session's ``noise_reduction`` asks for it. 16 kHz is the rate of VAD and ASR.

The resampler is the low-latency polyphase one: soxr held back ~21 ms of every stream on average,
which the end of each turn waited for (the VAD hears the pause that much later).
"""

from __future__ import annotations

from openrealtime.audio.resample import Resampler, quick_resampler
from openrealtime.audio.types import EMPTY, Samples
from openrealtime.contracts import NoiseStream, NoiseSuppressor
from openrealtime.protocol.config import NoiseReduction

ENGINE_RATE_HZ = 16_000


class AudioFrontEnd:
    """Resample and denoise one input stream.

    Args:
        noise: The process's noise suppressor; ``None`` makes ``noise_reduction`` a no-op.
    """

    def __init__(self, noise: NoiseSuppressor | None) -> None:
        self._resampler: Resampler | None = None
        self._noise_model = noise
        self._noise: NoiseStream | None = None
        self._noise_config: NoiseReduction | None = None

    def configure(self, noise_reduction: NoiseReduction | None) -> None:
        """Apply a session update's ``noise_reduction``; a new setting starts the denoiser afresh."""
        if noise_reduction is None:
            self._noise = None
        elif self._noise_model is not None and (noise_reduction != self._noise_config or self._noise is None):
            strength = 1.0 if noise_reduction.strength is None else noise_reduction.strength
            self._noise = self._noise_model.new_stream(noise_reduction.type, strength)
        self._noise_config = noise_reduction

    def process(self, samples: Samples, rate_hz: int, *, last: bool = False) -> Samples:
        """Samples at ``rate_hz`` in, 16 kHz (denoised) out; ``last`` flushes the resampler's tail."""
        if self._resampler is None or self._resampler.in_rate_hz != rate_hz:
            self._resampler = quick_resampler(rate_hz, ENGINE_RATE_HZ)
        out = self._resampler.process(samples, last=last)
        if last:
            self._resampler = None
        return self._noise.process(out) if self._noise is not None else out

    def flush(self) -> Samples:
        """The resampler's tail, so a commit holds every sample that was sent; the stream restarts."""
        if self._resampler is None:
            return EMPTY
        return self.process(EMPTY, self._resampler.in_rate_hz, last=True)
