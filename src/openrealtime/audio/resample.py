"""Stateful, high-quality sample-rate conversion, one instance per stream direction.

A stateless per-chunk resample clicks at every chunk edge; ``soxr.ResampleStream`` carries its filter
state across chunks, so the output of many small chunks equals the output of one big one.
"""

from __future__ import annotations

import functools
import math
from typing import Protocol

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


MAX_PHASES = 512  # the largest ``up`` or ``down`` the polyphase resampler takes (44.1 -> 16 kHz: 441)


class Resampler(Protocol):
    """What the streams use of a resampler."""

    in_rate_hz: int
    out_rate_hz: int

    def process(self, samples: Samples, *, last: bool = False) -> Samples: ...

    def flush(self) -> Samples: ...


def quick_resampler(in_rate_hz: int, out_rate_hz: int) -> Resampler:
    """The low-latency :class:`PolyphaseResampler` where the ratio is a small fraction (every rate a
    client sends: 8, 24 and 48 kHz to 16; 44.1 kHz too), soxr's otherwise (an odd rate would need a
    filter of millions of taps at the ratio's common rate)."""
    common = math.gcd(in_rate_hz, out_rate_hz)
    if max(in_rate_hz, out_rate_hz) // common > MAX_PHASES:
        return StreamResampler(in_rate_hz, out_rate_hz)
    return PolyphaseResampler(in_rate_hz, out_rate_hz)


STOPBAND_DB = 70.0  # the polyphase filter's rejection of what would alias
PASSBAND = 0.8  # its passband, flat to this fraction of the lower rate's Nyquist frequency (6.4 of 8 kHz)


class PolyphaseResampler:
    """A resampler that holds back ~1.5 ms of the stream instead of soxr's 9-33: for input whose every
    millisecond of delay is heard (the VAD's and the decoder's view of the microphone).

    soxr emits its output in blocks, so after a 20 ms chunk at 24 kHz it still holds 9-33 ms (21 on
    average) of what it was given; the end of the user's speech reached the VAD that much later. This
    is a windowed-sinc (Kaiser) filter at the ratio's common rate, delay-compensated: output sample
    ``n`` is the filter centred on its own time, so it can leave as soon as the input reaches half the
    filter's length past it. The ratio ``up / down`` in lowest terms makes the outputs repeat in groups
    of ``up``, each group ``down`` input samples after the one before and reading one window of input:
    a chunk's groups are one gather of their windows and one matrix product with the group's taps
    (``_group_taps``), about as cheap as soxr. Same interface and the same output length as
    :class:`StreamResampler` (the flush rounds the ratio); flat to 0.8 of the lower Nyquist frequency,
    70 dB of rejection above it (what would fold into the band).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        common = math.gcd(in_rate_hz, out_rate_hz)
        self._up, self._down = out_rate_hz // common, in_rate_hz // common
        self._passthrough = in_rate_hz == out_rate_hz
        self._taps, self._first = _group_taps(self._up, self._down)
        width = self._taps.shape[0]
        self._history = np.zeros(width, dtype=np.float32)  # input before the stream: silence
        self._history_start = -width  # absolute input index of _history[0]
        self._taken = 0  # input samples received
        self._groups = 0  # groups of output emitted
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
        width = self._taps.shape[0]
        if last:  # the stream ends: the rest as if silence followed, up to the ratio's length, rounded
            total = (2 * self._taken * up + down) // (2 * down)
            groups = -(-total // up)
            self._history = np.concatenate([self._history, np.zeros(width + down, dtype=np.float32)])
        else:  # every group whose newest input has arrived
            groups = max(self._groups, (self._taken - self._first - width) // down + 1)
        if groups <= self._groups:
            return EMPTY
        starts = np.arange(self._groups, groups) * down + self._first - self._history_start
        windows = np.lib.stride_tricks.sliding_window_view(self._history, width)[starts]
        out: Samples = (windows @ self._taps).reshape(-1).astype(np.float32, copy=False)
        if last:
            out = out[: max(0, total - self._emitted)]
        self._groups = groups
        self._emitted += out.size
        oldest = groups * down + self._first  # the next group's oldest input
        if not last and oldest > self._history_start:
            self._history = self._history[oldest - self._history_start :]
            self._history_start = oldest
        return out

    def flush(self) -> Samples:
        """Emit the tail; the resampler must not be fed afterwards."""
        return self.process(EMPTY, last=True)


@functools.cache
def _group_taps(up: int, down: int) -> tuple[np.ndarray, int]:
    """The taps of one group of ``up`` outputs, (window, up), and where group 0's window starts (an
    input index, negative: before the stream).

    The filter ``h`` runs at the common rate ``in * up = out * down``, where input sample ``i`` sits
    at ``i * up`` (zeros between, hence the gain ``up``) and output ``n`` at ``n * down``; centred,
    output ``n`` is ``sum_i x[i] * h[n * down + delay - i * up]``. For group ``r`` (outputs ``r * up``
    to ``r * up + up - 1``) that reads inputs ``r * down + first`` onwards, the same taps every group."""
    nyquist = 0.5 / max(up, down)  # the lower rate's Nyquist frequency, in cycles per common-rate sample
    width = (1 - PASSBAND) * nyquist
    cutoff = nyquist - width / 2
    delay = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * width)) // 2
    t = np.arange(2 * delay + 1) - delay
    h = up * 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(t.size, 0.1102 * (STOPBAND_DB - 8.7))
    first = -(delay // up)  # the oldest input any output of group 0 reads: ceil(-delay / up)
    last = ((up - 1) * down + delay) // up  # the newest
    taps = np.zeros((last - first + 1, up))
    i = np.arange(first, last + 1)
    for k in range(up):  # output k of the group, at k * down + delay on the filter's axis
        index = k * down + delay - i * up
        inside = (index >= 0) & (index < h.size)
        taps[inside, k] = h[index[inside]]
    return np.ascontiguousarray(taps, dtype=np.float32), first
