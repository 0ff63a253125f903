"""Whisper's token log-probabilities, word timings and segment measures through the Transcriber
contract, on the repo's sample speech (real models)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import openrealtime
from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.engines.whisper import WhisperOptions, WhisperTranscriber
from openrealtime.server.media import decode_upload

pytestmark = pytest.mark.real

RATE_HZ = 16_000
SAMPLE = Path(openrealtime.__file__).parent / "samples" / "demo.wav"
DEMO = decode_upload(SAMPLE.read_bytes(), rate_hz=RATE_HZ, max_s=60)


@pytest.fixture(scope="module")
def tiny() -> WhisperTranscriber:
    return WhisperTranscriber(WhisperOptions(model="tiny.en"))


def spelled(transcript: Transcript) -> str:
    return " ".join("".join(t.text for t in s.tokens).strip() for s in transcript.segments)


@pytest.mark.parametrize(("timestamps", "final"), [(False, False), (True, False), (False, True), (True, True)])
def test_tokens_spell_the_text_and_words_cover_it_in_order(
    tiny: WhisperTranscriber, timestamps: bool, final: bool
) -> None:
    options = TranscribeOptions(language="en", timestamps=timestamps, logprobs=True, word_timestamps=True, final=final)
    transcript = tiny.transcribe(DEMO, options)
    assert transcript.text.startswith("Good morning")
    assert spelled(transcript) == transcript.text
    assert all(t.logprob <= 0 and t.utf8.decode() == t.text for t in transcript.tokens)
    for segment in transcript.segments:
        assert segment.token_ids == tuple(t.token_id for t in segment.tokens)
        assert segment.avg_logprob is not None
        assert segment.no_speech_prob is not None
        if not timestamps:
            # Whisper's avg_logprob is the decode's mean, its end-of-text token counted (and its
            # timestamp tokens, when there are some): here, near the text tokens' mean.
            mean = sum(t.logprob for t in transcript.tokens) / len(transcript.tokens)
            assert segment.avg_logprob == pytest.approx(mean, abs=0.05)
    words = transcript.words
    assert "".join(w.word for w in words) == transcript.text.replace(" ", "")
    assert all(0.0 <= w.start_s <= w.end_s <= DEMO.size / RATE_HZ and 0.0 < w.probability <= 1.0 for w in words)
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)


def test_the_default_decode_gives_ids_and_measures_but_no_tokens_or_words(tiny: WhisperTranscriber) -> None:
    transcript = tiny.transcribe(DEMO, TranscribeOptions(language="en", timestamps=True))
    assert transcript.segments
    assert transcript.tokens == ()
    assert transcript.words == ()
    assert all(s.token_ids and s.avg_logprob is not None and s.avg_logprob < 0 for s in transcript.segments)
    untimed = tiny.transcribe(DEMO, TranscribeOptions(language="en"))
    assert untimed.segments == ()  # as before: text only
    asked = tiny.transcribe(DEMO, TranscribeOptions(language="en", logprobs=True))
    [whole] = asked.segments  # without timestamps, one segment over the whole audio carries the tokens
    assert (whole.start_s, whole.end_s) == (0.0, DEMO.size / RATE_HZ)
    assert asked.text == untimed.text
    assert math.isclose(sum(math.exp(t.logprob) for t in whole.tokens) / len(whole.tokens), 1.0, abs_tol=0.3)


def test_a_multilingual_model_detects_the_language_and_aligns_words() -> None:
    base = WhisperTranscriber(WhisperOptions(model="base"))
    transcript = base.transcribe(DEMO, TranscribeOptions(logprobs=True, word_timestamps=True))
    assert transcript.language == "en"
    assert spelled(transcript) == transcript.text
    assert len(transcript.words) >= len(transcript.text.split())
