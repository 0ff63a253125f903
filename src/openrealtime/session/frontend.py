"""The input audio front end of every session kind: wire bytes -> 16 kHz float32 samples.

Decode once (PCM16 or G.711, an odd trailing PCM byte carried to the next append), resample with one
stateful resampler (never per chunk: that clicks at every edge), then denoise when the session's
``noise_reduction`` asks for it. 16 kHz is the rate of VAD and ASR.
"""

from __future__ import annotations

from openrealtime.audio.codec import AudioFormat, decode_audio
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import EMPTY, Samples
from openrealtime.contracts import NoiseStream, NoiseSuppressor
from openrealtime.protocol.config import NoiseReduction

ENGINE_RATE_HZ = 16_000


class AudioFrontEnd:
    """Decode, resample and denoise one input stream.

    Args:
        audio_format: The wire format of the input.
        noise: The process's noise suppressor; ``None`` makes ``noise_reduction`` a no-op.
    """

    def __init__(self, audio_format: AudioFormat, noise: NoiseSuppressor | None) -> None:
        self.format = audio_format
        self._resampler = StreamResampler(audio_format.rate_hz, ENGINE_RATE_HZ)
        self._noise_model = noise
        self._noise: NoiseStream | None = None
        self._noise_config: NoiseReduction | None = None
        self._odd_byte = b""

    def configure(self, audio_format: AudioFormat, noise_reduction: NoiseReduction | None) -> None:
        """Apply a session update; a new format or noise setting starts its stage afresh."""
        if audio_format is not self.format:
            self.format = audio_format
            self._resampler = StreamResampler(audio_format.rate_hz, ENGINE_RATE_HZ)
            self._odd_byte = b""
        if noise_reduction is None:
            self._noise = None
        elif self._noise_model is not None and (noise_reduction != self._noise_config or self._noise is None):
            strength = 1.0 if noise_reduction.strength is None else noise_reduction.strength
            self._noise = self._noise_model.new_stream(noise_reduction.type, strength)
        self._noise_config = noise_reduction

    def decode(self, data: bytes) -> Samples:
        """Wire bytes to float32 samples at the wire rate (a PCM16 sample split across appends waits)."""
        if self.format is AudioFormat.PCM:
            data = self._odd_byte + data
            self._odd_byte = data[-1:] if len(data) % 2 else b""
            if self._odd_byte:
                data = data[:-1]
        return decode_audio(data, self.format)

    def process(self, samples: Samples, *, last: bool = False) -> Samples:
        """Samples at the wire rate in, 16 kHz (denoised) out; ``last`` flushes the resampler's tail."""
        out = self._resampler.process(samples, last=last)
        if last:
            self._resampler = StreamResampler(self.format.rate_hz, ENGINE_RATE_HZ)
        return self._noise.process(out) if self._noise is not None else out

    def flush(self) -> Samples:
        """The resampler's tail, so a commit holds every sample that was sent; the stream restarts."""
        return self.process(EMPTY, last=True)
