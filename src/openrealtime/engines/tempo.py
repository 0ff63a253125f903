"""Faster speech from a synthesizer, where the engine can speak faster by itself.

A translation session asks for faster speech while its listener falls behind (``Synthesize.speed``).
espeak-ng speaks at any rate in words per minute, so a faster variant is one more light instance that
shares the process's library; piper would need its model loaded again per speed, and other engines
have no rate at all: those speak at their own pace, and the request is only a hint.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from openrealtime.contracts import Synthesizer

SPEED_STEP = 0.05  # speeds are rounded to this, so a few variants serve every request
MIN_SPEED = 0.5
MAX_SPEED = 2.0

_lock = threading.Lock()
_variants: dict[tuple[int, float], tuple[Synthesizer, Synthesizer]] = {}  # (id, speed) -> (base, variant)


def at_speed(synthesizer: Synthesizer, speed: float) -> Synthesizer:
    """``synthesizer`` speaking ``speed`` times faster if it can, else ``synthesizer`` itself."""
    from openrealtime.engines.espeak_tts import EspeakSynthesizer

    speed = round(min(MAX_SPEED, max(MIN_SPEED, speed)) / SPEED_STEP) * SPEED_STEP
    if abs(speed - 1.0) < SPEED_STEP / 2 or not isinstance(synthesizer, EspeakSynthesizer):
        return synthesizer
    key = (id(synthesizer), speed)
    with _lock:
        cached = _variants.get(key)
        if cached is None or cached[0] is not synthesizer:
            options = replace(synthesizer.options, rate_wpm=round(synthesizer.options.rate_wpm * speed))
            cached = (synthesizer, EspeakSynthesizer(options))
            _variants[key] = cached
        return cached[1]
