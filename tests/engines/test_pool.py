"""Engine pools: concurrent calls get different instances; each instance serves one call at a time."""

from __future__ import annotations

import threading

from openrealtime.engines.fake import FakeChatModel, ToneSynthesizer
from openrealtime.engines.pool import ChatModelPool, SynthesizerPool
from openrealtime.engines.protocols import ChatRequest, TextDelta


def test_two_calls_at_once_run_on_two_instances() -> None:
    first, second = FakeChatModel("one two"), FakeChatModel("three four")
    pool = ChatModelPool([first, second])
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}])
    a = pool.chat(request, threading.Event())
    b = pool.chat(request, threading.Event())
    # Both streams are open at once: the second call must not wait for the first to finish.
    texts = [next(a), next(b)]
    assert {t.text for t in texts if isinstance(t, TextDelta)} == {"one", "three"}
    list(a), list(b)
    assert len(first.requests) == len(second.requests) == 1
    # A finished stream gives its instance back.
    list(pool.chat(request, threading.Event()))
    assert len(first.requests) + len(second.requests) == 3


def test_synthesizer_pool_keeps_the_protocol() -> None:
    pool = SynthesizerPool([ToneSynthesizer(), ToneSynthesizer()])
    assert pool.sample_rate_hz == ToneSynthesizer.sample_rate_hz
    chunks = list(pool.synthesize("hello", voice="alloy", stop=threading.Event()))
    assert sum(c.size for c in chunks) == 5 * ToneSynthesizer.ms_per_char * 24
