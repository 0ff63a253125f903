"""Fake engines that ship in the package, for fast deterministic tests (like httpx's MockTransport).

They implement the Protocols of :mod:`openrealtime.contracts` with arithmetic instead of
models, so runtime and server tests exercise every code path without loading weights.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Collection, Iterator, Sequence

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.contracts import (
    ChatChunk,
    ChatDone,
    ChatRequest,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    TranscribeOptions,
    Transcript,
    TranscriptSegment,
    WordTiming,
)
from openrealtime.exceptions import EngineError

_ENERGY_FULL_SCALE_RMS = 0.02  # RMS at which the fake VAD reports probability 1
# The fake transcriber's tokens: a word longer than this is two tokens; log-probabilities in steps of this.
SPLIT_WORD_CHARS = 4
FAKE_LOGPROB_STEP = 0.125
FAKE_TOKEN_ID = 1000  # the id of the script's first word (its n-th word is FAKE_TOKEN_ID + n)


class EnergyVadStream:
    """Speech probability from frame energy: silence is 0, a tone or speech at -34 dBFS is 1."""

    def probability(self, frame: Samples) -> float:
        rms = float(np.sqrt(np.mean(np.square(frame)))) if frame.size else 0.0
        return min(1.0, rms / _ENERGY_FULL_SCALE_RMS)

    def probabilities(self, audio: Samples) -> list[float]:
        frame = EnergyVad.frame_samples
        return [self.probability(audio[i : i + frame]) for i in range(0, audio.size, frame)]

    def reset(self) -> None:
        return None


class EnergyVad:
    """A :class:`~openrealtime.contracts.VadModel` that thresholds energy."""

    sample_rate_hz = 16_000
    frame_samples = 512

    def new_stream(self) -> EnergyVadStream:
        return EnergyVadStream()


class FixedEndOfTurn:
    """An :class:`~openrealtime.contracts.EndOfTurnModel` that always answers ``probability``.

    It records the length of every audio it was asked about, so tests can check what it heard.
    """

    sample_rate_hz = 16_000

    def __init__(self, probability: float = 1.0) -> None:
        self.probability = probability
        self.heard_samples: list[int] = []

    def completion_probability(self, audio: Samples) -> float:
        self.heard_samples.append(int(audio.size))
        return self.probability


class FakeTranscriber:
    """Hears ``words_per_second`` words of a script per second of non-silent audio.

    Growing audio yields a growing prefix of the script, as a real streaming decode would, so tests
    can check that deltas are append-only. ``fail_on`` makes it raise :class:`EngineError` when the
    audio is at least that many seconds long, to test failure paths. Asked for them, it gives each
    word's tokens with log-probabilities and its times (see :meth:`_segment`).
    """

    sample_rate_hz = 16_000
    multilingual = False

    def __init__(
        self,
        script: Sequence[str] = ("hello", "world", "this", "is", "a", "test", "of", "live", "captions"),
        *,
        words_per_second: float = 2.0,
        fail_on_seconds: float | None = None,
    ) -> None:
        self.script = tuple(script)
        self.words_per_second = words_per_second
        self.fail_on_seconds = fail_on_seconds
        self.calls = 0

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        self.calls += 1
        voiced_s = float(np.count_nonzero(np.abs(audio) > 1e-3)) / self.sample_rate_hz
        if self.fail_on_seconds is not None and audio.size / self.sample_rate_hz >= self.fail_on_seconds:
            raise EngineError("fake transcriber failure", code="transcription_failed")
        count = min(len(self.script), int(voiced_s * self.words_per_second))
        words = self.script[:count]
        # Segments of four words, timed as if each word took 1 / words_per_second seconds.
        segments = tuple(self._segment(words, i, min(len(words), i + 4), options) for i in range(0, len(words), 4))
        return Transcript(text=" ".join(words), segments=segments, language=options.language or "en")

    def _segment(self, words: Sequence[str], start: int, end: int, options: TranscribeOptions) -> TranscriptSegment:
        """Words ``[start, end)`` as a segment; a word of over ``SPLIT_WORD_CHARS`` is two tokens, and
        the ``n``-th token of the script has log-probability ``-FAKE_LOGPROB_STEP * (n % 3 + 1)``."""
        seconds_per_word = 1.0 / self.words_per_second
        tokens: list[TokenLogprob] = []
        timings: list[WordTiming] = []
        for index in range(start, end):
            word = words[index]
            pieces = [word[:SPLIT_WORD_CHARS], word[SPLIT_WORD_CHARS:]] if len(word) > SPLIT_WORD_CHARS else [word]
            word_tokens = [
                TokenLogprob(text, -FAKE_LOGPROB_STEP * ((2 * index + k) % 3 + 1), text.encode(), FAKE_TOKEN_ID + index)
                for k, text in enumerate([" " + pieces[0], *pieces[1:]])
            ]
            tokens += word_tokens
            probability = math.exp(sum(t.logprob for t in word_tokens) / len(word_tokens))
            timings.append(WordTiming(word, index * seconds_per_word, (index + 1) * seconds_per_word, probability))
        return TranscriptSegment(
            text=" ".join(words[start:end]),
            start_s=start * seconds_per_word,
            end_s=end * seconds_per_word,
            tokens=tuple(tokens) if options.logprobs else (),
            words=tuple(timings) if options.word_timestamps else (),
            token_ids=tuple(t.token_id for t in tokens),
            avg_logprob=sum(t.logprob for t in tokens) / len(tokens),
            no_speech_prob=0.0,
        )


class FakeChatModel:
    """Answers every request with ``reply``, streamed word by word; calls a tool when one is forced."""

    context_tokens = 4096

    def __init__(self, reply: str = "Hello there. How can I help you today?", *, sees_images: bool = False) -> None:
        self.reply = reply
        self.sees_images = sees_images
        self.requests: list[ChatRequest] = []

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        self.requests.append(request)
        forced = [t for t in request.tools if t.name == request.tool_choice]
        if request.tool_choice == "required" and request.tools:
            forced = [request.tools[0]]
        if forced:
            yield ToolCallDelta(index=0, name=forced[0].name, arguments="{}")
            yield ChatDone(finish_reason="tool_calls", input_tokens=10, output_tokens=2)
            return
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            if stop.is_set():
                return
            yield TextDelta(word if i == 0 else " " + word)
        yield ChatDone(finish_reason="stop", input_tokens=10, output_tokens=len(words))


class ToneSynthesizer:
    """Speaks every text as a 220 Hz tone, 60 ms per character divided by ``speed``, in 100 ms chunks.

    It speaks every language unless ``languages`` names the only ones (ISO-639-1 base codes).
    """

    sample_rate_hz = 24_000
    ms_per_char = 60

    def __init__(self, languages: Collection[str] | None = None) -> None:
        self.languages = frozenset(languages) if languages is not None else None

    def voices(self) -> Sequence[str]:
        return ("tone",)

    def speaks(self, language: str) -> bool:
        return self.languages is None or re.split(r"[-_]", language.lower(), maxsplit=1)[0] in self.languages

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        total = round(len(text) * self.ms_per_char * self.sample_rate_hz / 1000 / speed)
        chunk = self.sample_rate_hz // 10
        t = np.arange(total, dtype=np.float32) / self.sample_rate_hz
        tone = (0.2 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
        for start in range(0, total, chunk):
            if stop.is_set():
                return
            yield tone[start : start + chunk]


class UppercaseTranslator:
    """Translates by upper-casing and tagging the target language: ``"hi"`` -> ``"[es] HI"``."""

    def supports(self, source: str, target: str) -> bool:
        return source != target

    def translate(self, text: str, *, source: str, target: str) -> str:
        return f"[{target}] {text.upper()}"


class PassthroughNoiseStream:
    """Returns every chunk unchanged and counts what it saw."""

    def __init__(self, kind: str, strength: float) -> None:
        self.kind = kind
        self.strength = strength
        self.samples_seen = 0

    def process(self, samples: Samples) -> Samples:
        self.samples_seen += samples.size
        return samples


class PassthroughNoiseSuppressor:
    """A :class:`~openrealtime.contracts.NoiseSuppressor` that changes nothing; keeps its streams."""

    sample_rate_hz = 16_000

    def __init__(self) -> None:
        self.streams: list[PassthroughNoiseStream] = []

    def new_stream(self, kind: str, strength: float) -> PassthroughNoiseStream:
        stream = PassthroughNoiseStream(kind, strength)
        self.streams.append(stream)
        return stream
