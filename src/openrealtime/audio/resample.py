"""Stateful, high-quality sample-rate conversion, one instance per stream direction.

A stateless per-chunk resample clicks at every chunk edge; ``soxr.ResampleStream`` carries its filter
state across chunks, so the output of many small chunks equals the output of one big one.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import soxr

from openrealtime.audio.types import EMPTY, Samples


class StreamResampler:
    """Resample a stream of float32 chunks from ``in_rate_hz`` to ``out_rate_hz``.

    Args:
        in_rate_hz: Rate of the chunks passed to :meth:`process`.
        out_rate_hz: Rate of the chunks returned.
        quality: soxr quality recipe (``"HQ"`` by default; ``"VHQ"`` costs more for no audible gain).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int, *, quality: str = "HQ") -> None:
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._passthrough = in_rate_hz == out_rate_hz
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(in_rate_hz, out_rate_hz, 1, dtype="float32", quality=quality)
        )

    def process(self, samples: Samples, *, last: bool = False) -> Samples:
        """Feed a chunk; returns what the filter can emit so far (``last=True`` flushes the tail)."""
        if self._stream is None:
            return samples
        if samples.size == 0 and not last:
            return EMPTY
        out = self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=np.float32), last=last)
        return np.asarray(out, dtype=np.float32)

    def flush(self) -> Samples:
        """Emit the filter's tail; the resampler must not be fed afterwards."""
        return self.process(EMPTY, last=True)


STOPBAND_DB = 80.0  # the polyphase filter's rejection of what would alias
TRANSITION = 0.125  # its transition band, as a fraction of the lower rate's Nyquist frequency


class PolyphaseResampler:
    """A resampler that holds back ~2.5 ms of the stream instead of soxr's 10-35 ms: for input whose
    every millisecond of delay is heard (the VAD's and the decoder's view of the microphone).

    soxr emits its output in blocks, so after a 20 ms chunk at 24 kHz it still holds 9-33 ms (21 on
    average) of what it was given; the end of the user's speech reached the VAD that much later. This
    is a windowed-sinc (Kaiser) filter at the ratio's common rate, run polyphase and delay-compensated:
    output sample ``n`` is the filter centred on its own time, so it can be emitted as soon as the input
    reaches half the filter's length past it. Same interface and the same output length as
    :class:`StreamResampler` (the flush rounds the ratio); passband flat to 7/8 of the lower Nyquist
    frequency, 80 dB of rejection from it.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        common = math.gcd(in_rate_hz, out_rate_hz)
        self._up, self._down = out_rate_hz // common, in_rate_hz // common
        self._passthrough = in_rate_hz == out_rate_hz
        self._bank, self._delay = _polyphase_bank(self._up, self._down)
        taps = self._bank.shape[1]
        self._history = np.zeros(taps - 1, dtype=np.float32)  # input before the stream: silence
        self._history_start = 1 - taps  # absolute input index of _history[0]
        self._taken = 0  # input samples received
        self._emitted = 0  # output samples emitted

    def process(self, samples: Samples, *, last: bool = False) -> Samples:
        """Feed a chunk; returns every output sample the input now covers (``last=True`` flushes)."""
        if self._passthrough:
            return samples if samples.size or not last else EMPTY
        if samples.size == 0 and not last:
            return EMPTY
        self._history = np.concatenate([self._history, np.asarray(samples, dtype=np.float32)])
        self._taken += samples.size
        up, down = self._up, self._down
        if last:  # the stream ends: the rest as if silence followed, up to the ratio's length, rounded
            end = (2 * self._taken * up + down) // (2 * down)
            self._history = np.concatenate([self._history, np.zeros(self._bank.shape[1], dtype=np.float32)])
        else:  # every output sample whose newest input has arrived
            end = max(self._emitted, (up * self._taken - 1 - self._delay) // down + 1)
        n = np.arange(self._emitted, end, dtype=np.int64)
        position = n * down + self._delay  # each output sample's newest input, at the common rate
        newest = position // up - self._history_start
        windows = self._history[newest[:, None] - np.arange(self._bank.shape[1])[None, :]]
        out: Samples = np.einsum("ij,ij->i", windows, self._bank[position % up]).astype(np.float32)
        self._emitted = end
        oldest = (end * down + self._delay) // up - self._bank.shape[1] + 1  # the next sample's oldest input
        if not last and oldest > self._history_start:
            self._history = self._history[oldest - self._history_start :]
            self._history_start = oldest
        return out

    def flush(self) -> Samples:
        """Emit the tail; the resampler must not be fed afterwards."""
        return self.process(EMPTY, last=True)


@functools.cache
def _polyphase_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """The filter for a ratio ``up / down``, split into its ``up`` phases (rows, taps newest first,
    scaled by ``up`` for the zeros stuffed between input samples), and its centre at the common rate."""
    nyquist = 0.5 / max(up, down)  # the lower rate's Nyquist frequency, in cycles per common-rate sample
    width = TRANSITION * nyquist
    cutoff = nyquist - width / 2
    length = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * width))
    delay = length // 2
    t = np.arange(2 * delay + 1) - delay
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(t.size, beta)
    taps = math.ceil(h.size / up)
    padded = np.zeros(taps * up)
    padded[: h.size] = h * up
    return np.ascontiguousarray(padded.reshape(taps, up).T, dtype=np.float32), delay
