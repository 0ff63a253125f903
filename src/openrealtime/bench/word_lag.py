"""Word lag of live captions, a passage read without stopping, and offline WER with the same engine.

*Word lag* is how long after a word was spoken it is shown for good: the arrival of the delta that
carries it, minus the moment the word ends in the audio. When each word ends comes from an offline
decode of the very audio streamed, with word timestamps; the captions' words are aligned to that
decode's words (case and punctuation aside) and only the words both have are timed, so a word the
captions got wrong is not timed (it counts in the WER instead).

The passage is the bench's sentences read one after the other with ``PASSAGE_GAP_MS`` between them
and the silence piper leaves around each clip trimmed, so no pause is long enough to end a turn
(issue 14: a 12 s sentence without a pause got no stable caption until it ended).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.bench.speech import WIRE_RATE_HZ, normalize, silence, speak, word_error_rate
from openrealtime.client.transcribe import TimedEvent
from openrealtime.contracts import TranscribeOptions

ENGINE_RATE_HZ = 16_000
PASSAGE_GAP_MS = 150  # between two sentences of the passage: shorter than any turn-ending pause
PASSAGE_MIN_S = 20.0
TRIM_LEVEL = 0.01  # a clip's leading and trailing samples quieter than this are piper's silence
DELTA = "conversation.item.input_audio_transcription.delta"


@dataclass(frozen=True)
class SpokenWord:
    """A word of the streamed audio and when it ends (seconds from the start of the stream)."""

    word: str
    end_s: float


def trimmed(clip: Samples) -> Samples:
    """``clip`` without the near-silence at its ends."""
    loud = np.flatnonzero(np.abs(clip) > TRIM_LEVEL)
    return clip[loud[0] : loud[-1] + 1] if loud.size else clip[:0]


def passage(texts: Sequence[str], *, lead_ms: int = 500, tail_ms: int = 1500) -> tuple[Samples, str]:
    """``texts`` read without stopping, as long as ``PASSAGE_MIN_S`` at least (the texts again if
    short): the audio and its text."""
    clips: list[Samples] = []
    said: list[str] = []
    while sum(c.size for c in clips) / WIRE_RATE_HZ < PASSAGE_MIN_S:
        for text in texts:
            clips.append(trimmed(speak(text)))
            said.append(text)
    gap = silence(PASSAGE_GAP_MS)
    parts: list[Samples] = [silence(lead_ms)]
    for clip in clips:
        parts += [clip, gap]
    parts.append(silence(tail_ms))
    return np.concatenate(parts).astype(np.float32), " ".join(said)


def engine(model: str) -> Any:
    """Our Whisper engine with ``model`` (the server's default options), for offline decodes."""
    from openrealtime.engines.whisper import WhisperOptions, WhisperTranscriber

    return WhisperTranscriber(WhisperOptions(model=model, threads=2, workers=1))


def at_engine_rate(audio: Samples) -> Samples:
    return StreamResampler(WIRE_RATE_HZ, ENGINE_RATE_HZ).process(audio, last=True)


def spoken_words(transcriber: Any, audio: Samples, language: str | None) -> list[SpokenWord]:
    """The words of ``audio`` (24 kHz) with their end times, from an offline decode with word times.

    Decoded in windows as the server decodes long turns (``audio_windows``), each window's words
    moved by its start."""
    from openrealtime.runtime.engines import audio_windows

    samples = at_engine_rate(audio)
    options = TranscribeOptions(language=language, timestamps=True, word_timestamps=True, final=True)
    words: list[SpokenWord] = []
    for start, end in audio_windows(samples, ENGINE_RATE_HZ):
        transcript = transcriber.transcribe(samples[start:end], options)
        offset = start / ENGINE_RATE_HZ
        for segment in transcript.segments:
            for word in segment.words:
                for piece in normalize(word.word).split():
                    words.append(SpokenWord(piece, offset + word.end_s))
    return words


def caption_words(events: Sequence[TimedEvent]) -> list[tuple[str, float]]:
    """Each word of the live deltas, in the order shown, with the time its delta arrived."""
    shown: list[tuple[str, float]] = []
    for timed in events:
        if timed.event.get("type") == DELTA:
            shown += [(w, timed.at_s) for w in normalize(str(timed.event.get("delta", ""))).split()]
    return shown


def word_lags(shown: Sequence[tuple[str, float]], spoken: Sequence[SpokenWord], audio_t0: float) -> list[float]:
    """Seconds from the end of each spoken word to the delta that showed it, for the words the
    captions and the offline decode agree on (``audio_t0``: when the stream's first sample was sent,
    on the clock of the events)."""
    matcher = difflib.SequenceMatcher(a=[w for w, _ in shown], b=[w.word for w in spoken], autojunk=False)
    lags: list[float] = []
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            lags.append(shown[block.a + i][1] - (audio_t0 + spoken[block.b + i].end_s))
    return lags


def offline_wer(transcriber: Any, clips: Sequence[tuple[str, Samples]], language: str | None) -> float:
    """WER of one offline decode per clip (24 kHz), with the options the server's final decode uses."""
    from openrealtime.runtime.engines import audio_windows

    hypotheses = []
    for _, clip in clips:
        samples = at_engine_rate(clip)
        texts = [
            transcriber.transcribe(samples[s:e], TranscribeOptions(language=language, final=True)).text
            for s, e in audio_windows(samples, ENGINE_RATE_HZ)
        ]
        hypotheses.append(" ".join(t.strip() for t in texts))
    return word_error_rate([text for text, _ in clips], hypotheses)
