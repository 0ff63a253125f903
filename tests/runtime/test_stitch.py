"""Window stitching keeps what each window's decode measured: words moved by the window's start,
tokens and segment measures as they are."""

from __future__ import annotations

import numpy as np

from openrealtime.contracts import TranscribeOptions
from openrealtime.engines.fake import FakeTranscriber
from openrealtime.runtime.engines import stitch

RATE_HZ = 16_000


def speech(seconds: float) -> np.ndarray:
    return np.full(int(seconds * RATE_HZ), 0.1, dtype=np.float32)


def test_stitched_windows_keep_words_in_order_with_their_times_offset() -> None:
    asr = FakeTranscriber(("one", "two", "three", "four", "five", "six"), words_per_second=2.0)
    options = TranscribeOptions(timestamps=True, logprobs=True, word_timestamps=True)
    first = asr.transcribe(speech(1.5), options)  # one two three
    second = asr.transcribe(speech(1.0), options)  # one two
    whole = stitch([(0.0, first), (24.0, second)])
    assert whole.text == "one two three one two"
    assert [(w.word, w.start_s, w.end_s) for w in whole.words] == [
        ("one", 0.0, 0.5),
        ("two", 0.5, 1.0),
        ("three", 1.0, 1.5),
        ("one", 24.0, 24.5),
        ("two", 24.5, 25.0),
    ]
    assert whole.tokens == first.tokens + second.tokens
    assert "".join(t.text for t in whole.tokens).split() == whole.text.split()
    assert [s.token_ids for s in whole.segments] == [s.token_ids for s in first.segments + second.segments]
    assert [s.avg_logprob for s in whole.segments] == [s.avg_logprob for s in first.segments + second.segments]


def test_the_fake_gives_tokens_and_words_only_when_asked() -> None:
    asr = FakeTranscriber()
    plain = asr.transcribe(speech(2.0), TranscribeOptions())
    assert plain.text == "hello world this is"
    assert plain.tokens == ()
    assert plain.words == ()
    assert all(s.token_ids and s.avg_logprob is not None and s.avg_logprob < 0 for s in plain.segments)
    asked = asr.transcribe(speech(2.0), TranscribeOptions(logprobs=True, word_timestamps=True))
    assert [t.text for t in asked.tokens] == [" hell", "o", " worl", "d", " this", " is"]
    assert all(t.logprob < 0 and t.utf8 == t.text.encode() for t in asked.tokens)
    assert [w.word for w in asked.words] == ["hello", "world", "this", "is"]
    assert all(0 < w.probability <= 1 for w in asked.words)
