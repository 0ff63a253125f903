"""A growable, capped sample buffer with an absolute start offset.

Appends amortise to O(1) by doubling a preallocated array; ``np.append`` per chunk would copy the whole
buffer each time. Offsets are absolute sample counts since the stream began, so a session can drop
audio from the front (after a commit) and still address samples by their position in the stream.
"""

from __future__ import annotations

import numpy as np

from openrealtime.audio.types import Samples

_INITIAL_CAPACITY_SAMPLES = 16_000


class BufferFullError(Exception):
    """Raised when an append would grow the buffer past its hard cap."""


class SampleBuffer:
    """Float32 samples ``[start, end)`` of a stream, addressed by absolute sample index.

    Args:
        max_samples: Hard cap on samples held at once; appending past it raises ``BufferFullError``.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self._data = np.zeros(min(_INITIAL_CAPACITY_SAMPLES, max_samples), dtype=np.float32)
        self._start = 0  # absolute index of self._data[0]
        self._length = 0

    @property
    def start(self) -> int:
        """Absolute index of the first sample held."""
        return self._start

    @property
    def end(self) -> int:
        """Absolute index one past the last sample held (total samples ever appended)."""
        return self._start + self._length

    def __len__(self) -> int:
        return self._length

    def append(self, samples: Samples) -> None:
        needed = self._length + samples.size
        if needed > self.max_samples:
            raise BufferFullError(f"buffer holds {self._length} samples; cap is {self.max_samples}")
        if needed > self._data.size:
            capacity = self._data.size
            while capacity < needed:
                capacity *= 2
            grown = np.zeros(min(capacity, self.max_samples), dtype=np.float32)
            grown[: self._length] = self._data[: self._length]
            self._data = grown
        self._data[self._length : needed] = samples
        self._length = needed

    def view(self, start: int | None = None, end: int | None = None) -> Samples:
        """Samples between absolute indices (clamped to what is held); a view, not a copy."""
        lo = self._start if start is None else max(start, self._start)
        hi = self.end if end is None else min(end, self.end)
        if hi <= lo:
            return self._data[:0]
        return self._data[lo - self._start : hi - self._start]

    def copy(self, start: int | None = None, end: int | None = None) -> Samples:
        """Like :meth:`view`, but a copy that stays valid after later appends and drops."""
        return self.view(start, end).copy()

    def drop_before(self, index: int) -> None:
        """Forget samples before absolute ``index`` (moves the rest to the front)."""
        index = min(max(index, self._start), self.end)
        drop = index - self._start
        if drop == 0:
            return
        remaining = self._length - drop
        self._data[:remaining] = self._data[drop : self._length]
        self._start = index
        self._length = remaining

    def clear(self) -> None:
        """Forget everything held; the absolute position keeps counting from ``end``."""
        self.drop_before(self.end)
