"""The engine contracts: what a session's runtime needs from VAD, ASR, LLM, TTS, MT and denoising.

Neutral ground between the core and the engines: the sessions and the runtime depend on these
Protocols and data types, each engine module implements them, and neither side imports the other.

Engines are plain classes. Methods are *blocking*: the runtime calls them in worker threads, and each
long-running call takes a ``stop`` event that it checks between chunks, so a cancelled response stops
costing CPU soon after the cancel. One instance of each engine serves every session of a process;
per-stream state (VAD recurrent state, denoiser state) lives in the stream objects they hand out.
Library errors are translated into :class:`openrealtime.exceptions.EngineError` inside each engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from openrealtime.audio.types import Samples

# --- VAD -------------------------------------------------------------------------------------------


class VadStream(Protocol):
    """Per-stream recurrent state of a VAD model."""

    def probability(self, frame: Samples) -> float:
        """Speech probability of one frame of exactly ``frame_samples`` samples."""
        ...

    def probabilities(self, audio: Samples) -> list[float]:
        """Speech probabilities of consecutive frames (``audio.size`` a multiple of ``frame_samples``),
        as if fed one by one; engines that can run them in one call do (cheaper per frame)."""
        ...

    def reset(self) -> None: ...


class VadModel(Protocol):
    """A frame-level speech detector; the start/stop hysteresis lives in ``session.vad``."""

    sample_rate_hz: int
    frame_samples: int

    def new_stream(self) -> VadStream: ...


# --- End of turn -----------------------------------------------------------------------------------


class EndOfTurnModel(Protocol):
    """Whether a speaker has finished their turn, from the turn's audio (``semantic_vad``).

    The session asks at a pause (through a command: a decision costs tens of milliseconds, too long
    for the event loop); the eagerness thresholds live in ``session.endpointing``.
    """

    sample_rate_hz: int

    def completion_probability(self, audio: Samples) -> float:
        """The probability in [0, 1] that the turn whose audio is ``audio`` (the pause so far at its
        end, mono float32 at ``sample_rate_hz``) is complete."""
        ...


class EndOfTurnTextModel(Protocol):
    """How likely a user's message ends after the words so far, from an LLM (``semantic_vad``'s text
    signal, :mod:`openrealtime.session.eou_text`; asked through a command, as the model above)."""

    def end_probability(self, words: str) -> float:
        """The probability in [0, 1] of the end-of-message token right after ``words``."""
        ...

    def warm(self, words: str) -> None:
        """Evaluate ``words`` (a turn's so far) into the model's cache, so that a question about more
        of them later evaluates only the rest; never fails (a warming is only a head start)."""
        ...


# --- ASR -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenLogprob:
    """One decoded text token and its natural-log probability (OpenAI's ``logprobs`` entries).

    Attributes:
        text: The token's text as the tokenizer spells it, a leading space included (``" Hello"``).
            A token that ends inside a multi-byte character has only the characters it completes.
        logprob: ``log p`` of the token given the audio and the tokens before it (``<= 0``).
        utf8: The token's own bytes (a piece of a multi-byte character where it splits one).
        token_id: The tokenizer's id of the token.
    """

    text: str
    logprob: float
    utf8: bytes
    token_id: int


@dataclass(frozen=True)
class WordTiming:
    """A word of a segment, its punctuation attached, with its times in seconds from the start of
    the decoded audio and the mean probability of its tokens (Whisper's cross-attention alignment)."""

    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    """A piece of a transcript with its times in seconds from the start of the decoded audio.

    Attributes:
        text: The segment's text, stripped.
        start_s: Where it begins.
        end_s: Where it ends.
        tokens: Its text tokens with their log-probabilities, in order (only when
            :attr:`TranscribeOptions.logprobs` asked for them); their texts add up to ``text``
            after the first token's leading space is stripped.
        words: Its words with their times, stripped, in order (only when
            :attr:`TranscribeOptions.word_timestamps` asked for them). They are Whisper's words,
            split where its tokens begin a word: "real-time" can be "real" and "-time".
        token_ids: The ids of its text tokens, as Whisper's ``verbose_json`` lists them.
        avg_logprob: The mean log-probability of the tokens of the decode it came from (Whisper's
            measure, its end-of-text token counted), or ``None`` when the engine gives none.
        no_speech_prob: The decoder's probability that the decoded audio held no speech.
    """

    text: str
    start_s: float
    end_s: float
    tokens: tuple[TokenLogprob, ...] = ()
    words: tuple[WordTiming, ...] = ()
    token_ids: tuple[int, ...] = ()
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class Transcript:
    """One decode of one piece of audio.

    A decode asked for ``logprobs`` or ``word_timestamps`` without ``timestamps`` has its text as
    one segment over the whole audio, so the tokens and words always live in :attr:`segments`.
    """

    text: str
    segments: tuple[TranscriptSegment, ...] = ()
    language: str | None = None

    @property
    def tokens(self) -> tuple[TokenLogprob, ...]:
        """The tokens of every segment, in order (empty unless ``logprobs`` were asked for)."""
        return tuple(token for segment in self.segments for token in segment.tokens)

    @property
    def words(self) -> tuple[WordTiming, ...]:
        """The timed words of every segment, in order (empty unless ``word_timestamps`` were asked for)."""
        return tuple(word for segment in self.segments for word in segment.words)


@dataclass(frozen=True)
class TranscribeOptions:
    """Options of one decode.

    Attributes:
        language: ISO-639-1 source language, or ``None`` to detect it (multilingual models only).
        prompt: Text that conditions the decoder (previous context, vocabulary).
        task: ``"transcribe"``, or ``"translate"`` for Whisper's speech-to-English translation.
        timestamps: Whether to return segments with times (needed to cut long audio at a pause).
        logprobs: Whether to return each text token's log-probability (``TranscriptSegment.tokens``).
        word_timestamps: Whether to return each word's times (``TranscriptSegment.words``): an
            alignment pass after the decode, so it costs more than ``logprobs``.
        final: The text someone keeps (a turn's final transcript, an uploaded file), worth the
            engine's most accurate decode; a live caption's decode is not, and must be quick.
    """

    language: str | None = None
    prompt: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    timestamps: bool = False
    logprobs: bool = False
    word_timestamps: bool = False
    final: bool = False


class Transcriber(Protocol):
    """Speech to text over a whole piece of audio at ``sample_rate_hz``."""

    sample_rate_hz: int
    multilingual: bool

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript: ...


# --- LLM -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """A function tool as OpenAI describes it: name, description, JSON Schema of the arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request in OpenAI chat format.

    Attributes:
        messages: ``[{"role": "system"|"user"|"assistant"|"tool", "content": ..., ...}]`` as in the
            OpenAI chat API (assistant tool calls as ``tool_calls``, results as ``role: "tool"``).
        tools: Tools the model may call.
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` or the name of one tool to force.
        max_tokens: Output cap, or ``None`` for the engine's default.
        temperature: Sampling temperature.
        cache_key: Requests with the same key continue one conversation (a realtime session's id),
            so an engine can keep their prompt cache together, as OpenAI's ``prompt_cache_key``.
        hold_while: Set by the runtime: while it returns true, the answer's listener is busy with
            what was already produced (its first clause being voiced), and an engine that shares
            the cores may pause the answer's later tokens for a moment. Engines may ignore it.
    """

    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[ToolSpec] = ()
    tool_choice: str = "auto"
    max_tokens: int | None = None
    temperature: float = 0.0
    cache_key: str | None = None
    hold_while: Callable[[], bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call: the first delta of a call has its ``name``, later ones only arguments.

    The concatenated ``arguments`` of one ``index`` is a JSON object valid against the tool's schema.
    """

    index: int
    name: str | None
    arguments: str


@dataclass(frozen=True)
class ChatDone:
    """End of the completion, with token usage and why it stopped (``stop``, ``length``, ``tool_calls``)."""

    finish_reason: str
    input_tokens: int = 0
    output_tokens: int = 0


ChatChunk = TextDelta | ToolCallDelta | ChatDone


class ChatModel(Protocol):
    """A streaming chat LLM: llama.cpp in process, or any OpenAI-compatible endpoint.

    ``sees_images``: whether messages may carry ``image_url`` content parts (a vision model); a
    session refuses image inputs with a clear error when it is false.
    """

    context_tokens: int
    sees_images: bool

    def count_tokens(self, text: str) -> int: ...

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        """Stream the completion; ends with exactly one :class:`ChatDone` unless ``stop`` is set."""
        ...


@runtime_checkable
class PromptWarmer(Protocol):
    """A chat LLM that can evaluate the start of an answer before it is asked for (llama.cpp in
    process: its prompt cache). A remote endpoint keeps its own cache and is not warmed."""

    def warm(self, request: ChatRequest) -> None:
        """Evaluate ``request``'s prompt up to its last user message's words into the cache of its
        ``cache_key``, when nothing urgent runs; returns at once, and never fails."""
        ...


@runtime_checkable
class FirstWordsWriter(Protocol):
    """A chat LLM in this process that can say whether an answer is writing its first words (llama.cpp:
    the cores it shares with the end-of-turn judges)."""

    def writing_first_words(self) -> bool:
        """Whether an answer (not a warming) waits to start or has not yet written its first clause."""
        ...


# --- TTS -------------------------------------------------------------------------------------------


#: The speaking rates a synthesizer accepts, as multiples of its voice's own rate: OpenAI's lowest
#: ``speed`` (0.25) up to twice as fast (a translation catching up with its listener).
MIN_SPEED = 0.25
MAX_SPEED = 2.0


class Synthesizer(Protocol):
    """Text to speech at ``sample_rate_hz``; yields audio chunks as soon as each is ready."""

    sample_rate_hz: int

    def voices(self) -> Sequence[str]: ...

    def speaks(self, language: str) -> bool:
        """Whether a voice speaks ``language`` (``es``, ``pt-BR``) as that language, not with the
        sounds of another one (espeak-ng reads an unknown language with its default voice)."""
        ...

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        """Speak ``text``, ``speed`` times as fast as the voice's own rate (in [MIN_SPEED, MAX_SPEED]),
        set per call: nothing is loaded again for another speed."""
        ...


# --- MT --------------------------------------------------------------------------------------------


class Translator(Protocol):
    """Text translation between ISO-639-1 languages."""

    def supports(self, source: str, target: str) -> bool: ...

    def translate(self, text: str, *, source: str, target: str) -> str: ...


# --- Noise reduction -------------------------------------------------------------------------------


class NoiseStream(Protocol):
    """Per-stream state of a noise suppressor; output may lag input by a fixed delay."""

    def process(self, samples: Samples) -> Samples: ...


class NoiseSuppressor(Protocol):
    """A real-time noise suppressor (``near_field`` / ``far_field`` profiles)."""

    sample_rate_hz: int

    def new_stream(self, kind: Literal["near_field", "far_field"], strength: float) -> NoiseStream: ...
