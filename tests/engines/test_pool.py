"""TTS pools: concurrent calls get different instances; each instance serves one call at a time."""

from __future__ import annotations

import threading

from openrealtime.engines.fake import ToneSynthesizer
from openrealtime.engines.pool import SynthesizerPool


def test_two_calls_at_once_run_on_two_instances() -> None:
    first, second = ToneSynthesizer(), ToneSynthesizer()
    pool = SynthesizerPool([first, second])
    a = pool.synthesize("hello", voice="alloy", stop=threading.Event())
    b = pool.synthesize("world", voice="alloy", stop=threading.Event())
    # Both streams are open at once: the second call must not wait for the first to finish.
    assert next(a).size > 0
    assert next(b).size > 0
    list(a), list(b)
    # A finished stream gives its instance back.
    assert sum(c.size for c in pool.synthesize("again", voice="alloy", stop=threading.Event())) > 0


def test_synthesizer_pool_keeps_the_protocol() -> None:
    pool = SynthesizerPool([ToneSynthesizer(), ToneSynthesizer()])
    assert pool.sample_rate_hz == ToneSynthesizer.sample_rate_hz
    chunks = list(pool.synthesize("hello", voice="alloy", stop=threading.Event()))
    assert sum(c.size for c in chunks) == 5 * ToneSynthesizer.ms_per_char * 24
