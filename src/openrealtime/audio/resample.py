"""Stateful, high-quality sample-rate conversion, one instance per stream direction.

A stateless per-chunk resample clicks at every chunk edge; ``soxr.ResampleStream`` carries its filter
state across chunks, so the output of many small chunks equals the output of one big one.
"""

from __future__ import annotations

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
