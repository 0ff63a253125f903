"""The windows of long turns already decoded, so a turn's next final decodes only its last window.

The final decode of a turn is always of the whole turn (:mod:`~openrealtime.session.turns`), and
audio over ``LONG_AUDIO_S`` is decoded in windows cut from its start at fixed points
(:func:`~openrealtime.runtime.engines.audio_windows`). A long turn asks for its final again at each
pause (speculatively) and at its end: every window but the last is the same audio, with the same
options and the same prompt, so its transcript is the same and is kept here, by a digest of its
samples and options. Bounded: the oldest go first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript

KEPT_WINDOWS = 64  # about 25 minutes of long turns' windows, a few kB each


class DecodedWindows:
    """Transcripts of decoded windows by (samples, options); safe to use from any thread."""

    def __init__(self, kept: int = KEPT_WINDOWS) -> None:
        self._kept = kept
        self._windows: OrderedDict[tuple[bytes, TranscribeOptions], Transcript] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    @staticmethod
    def key(audio: Samples, options: TranscribeOptions) -> tuple[bytes, TranscribeOptions]:
        return hashlib.blake2b(audio.tobytes(), digest_size=16).digest(), options

    def get(self, key: tuple[bytes, TranscribeOptions]) -> Transcript | None:
        with self._lock:
            transcript = self._windows.get(key)
            if transcript is not None:
                self._windows.move_to_end(key)
                self.hits += 1
            return transcript

    def put(self, key: tuple[bytes, TranscribeOptions], transcript: Transcript) -> None:
        with self._lock:
            self._windows[key] = transcript
            self._windows.move_to_end(key)
            while len(self._windows) > self._kept:
                self._windows.popitem(last=False)
