"""Speech to text on another server: any OpenAI-compatible ``POST /v1/audio/transcriptions`` (vLLM
serving Whisper, speaches, another openrealtime).

This module owns :class:`RemoteTranscriber`, a :class:`~openrealtime.contracts.Transcriber` that
sends each decode as one multipart upload (16 kHz PCM16 WAV) and reads OpenAI's answer back into a
:class:`~openrealtime.contracts.Transcript`. It is called from the ASR worker threads as Whisper
is (``runtime/engines.py``), so live captions, speculative finals, turn finals and the REST
endpoints use it unchanged; the HTTP client, timeouts and retries are
:class:`~openrealtime.engines.remote_http.RemoteEndpoint`'s.

What a decode asks for maps onto OpenAI's fields: ``logprobs`` onto ``include[]=logprobs`` with
``response_format=json`` (the only format OpenAI gives them in), segment and word times onto
``verbose_json`` with ``timestamp_granularities[]`` (when both are asked for, the times win: a
caption window needs them to slide, and the logprobs are left out), and a multilingual model's
detected language onto ``verbose_json`` too (its ``language`` is a name, ``"english"``, read back as
a code through ``language_codes``). Whisper's speech-to-English task goes to
``/audio/translations``.

Live captions need no rule of their own here: a turn has one partial decode in flight at a time and
the next one covers all the audio that came in meanwhile (``session/turns.py``), so a slower server
gets fewer, larger partial requests by itself.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.types import Samples
from openrealtime.contracts import TokenLogprob, TranscribeOptions, Transcript, TranscriptSegment, WordTiming
from openrealtime.engines.remote_http import RemoteEndpoint, RemoteOptions
from openrealtime.exceptions import EngineError

SAMPLE_RATE_HZ = 16_000
TRANSCRIPTIONS_PATH = "audio/transcriptions"
TRANSLATIONS_PATH = "audio/translations"
ENGLISH_ONLY_SUFFIX = ".en"  # Whisper's English-only checkpoints: tiny.en, base.en ...
SEGMENT_START_SLACK_S = 0.05  # a word may start a little before its segment, by rounding
UNKNOWN_TOKEN_ID = -1  # OpenAI's logprobs carry a token's text and bytes, not its id
UNKNOWN_WORD_PROBABILITY = 1.0  # verbose_json words carry no probability


@dataclass(frozen=True)
class RemoteAsrOptions:
    """A transcription endpoint and the model it serves.

    Attributes:
        endpoint: The server (its ``/v1`` root), key, timeouts and retries.
        model: The model name to request (``whisper-1`` for any openrealtime, the served name for
            vLLM or speaches).
        multilingual: Whether the model detects and transcribes other languages than English;
            ``None`` guesses from the name (Whisper's ``.en`` checkpoints are English only).
        language_codes: Language names as ``verbose_json`` writes them (``"english"``) to their
            ISO-639-1 codes; a code sent as it is passes through.
    """

    endpoint: RemoteOptions
    model: str = "whisper-1"
    multilingual: bool | None = None
    language_codes: Mapping[str, str] = field(default_factory=dict)


class RemoteTranscriber:
    """A :class:`~openrealtime.contracts.Transcriber` over HTTP; one pooled client for every session.

    Args:
        options: The endpoint and model.
        transport: An httpx transport to use instead of the network (tests).
        endpoint: A ready :class:`RemoteEndpoint` (tests pass one with a recording sleep).
    """

    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(
        self,
        options: RemoteAsrOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        endpoint: RemoteEndpoint | None = None,
    ) -> None:
        self.options = options
        self.endpoint = endpoint or RemoteEndpoint(options.endpoint, engine="asr", transport=transport)
        guessed = not options.model.lower().endswith(ENGLISH_ONLY_SUFFIX)
        self.multilingual = guessed if options.multilingual is None else options.multilingual

    def close(self) -> None:
        """Close the connection pool."""
        self.endpoint.close()

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        """Decode ``audio`` (mono float32 at 16 kHz) on the server.

        Raises:
            EngineError: The server could not be reached, answered an error, or sent a body that is
                not a transcription (see :class:`RemoteEndpoint`).
        """
        if audio.size == 0:
            return Transcript("", (), options.language)
        translate = options.task == "translate"
        fields = self.form(options)
        files = {"file": ("audio.wav", wav_bytes(audio, SAMPLE_RATE_HZ), "audio/wav")}
        path = TRANSLATIONS_PATH if translate else TRANSCRIPTIONS_PATH
        with self.endpoint.open(path, data=fields, files=files) as response:
            response.read()
        try:
            body = response.json()
        except ValueError as exc:
            raise self.endpoint.bad_response(f"a body that is not JSON: {exc}") from exc
        duration_s = audio.size / SAMPLE_RATE_HZ
        try:
            transcript = self.read(body, duration_s)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise self.endpoint.bad_response(f"a malformed transcription: {exc!r}") from exc
        if transcript.language is None:
            language = "en" if translate or not self.multilingual else options.language
            transcript = Transcript(transcript.text, transcript.segments, language)
        return transcript

    def form(self, options: TranscribeOptions) -> dict[str, Any]:
        """The text fields of the upload for ``options``."""
        fields: dict[str, Any] = {"model": self.options.model}
        if options.prompt:
            fields["prompt"] = options.prompt
        timed = options.timestamps or options.word_timestamps
        if options.task == "translate":
            fields["response_format"] = "verbose_json" if timed else "json"
            return fields
        if options.language:
            fields["language"] = options.language
        detect = self.multilingual and not options.language
        if timed or (detect and not options.logprobs):
            fields["response_format"] = "verbose_json"
            fields["timestamp_granularities[]"] = ["segment", "word"] if options.word_timestamps else ["segment"]
        else:
            fields["response_format"] = "json"
            if options.logprobs:
                fields["include[]"] = ["logprobs"]
        return fields

    def read(self, body: Any, duration_s: float) -> Transcript:
        """A ``json`` or ``verbose_json`` body as a :class:`Transcript`."""
        if not isinstance(body, Mapping) or not isinstance(body.get("text"), str):
            raise EngineError("asr server sent a body without a 'text'", code="asr_bad_response")
        text = body["text"].strip()
        language = self.language_code(body.get("language"))
        if "segments" in body or "words" in body:
            return Transcript(text, timed_segments(body, text, duration_s), language)
        tokens = tuple(token_logprob(entry) for entry in body.get("logprobs") or ())
        if tokens:
            return Transcript(text, (TranscriptSegment(text, 0.0, duration_s, tokens=tokens),), language)
        return Transcript(text, (), language)

    def language_code(self, name: object) -> str | None:
        """``"english"`` (or ``"en"``) -> ``"en"``; ``None`` for no language or an unknown name."""
        if not isinstance(name, str) or not name:
            return None
        word = name.strip().lower()
        if word in self.options.language_codes.values():
            return word
        return self.options.language_codes.get(word)


def token_logprob(entry: Mapping[str, Any]) -> TokenLogprob:
    """One of OpenAI's ``{"token", "logprob", "bytes"}`` entries."""
    text = str(entry["token"])
    raw = entry.get("bytes")
    utf8 = bytes(raw) if raw is not None else text.encode()
    return TokenLogprob(text, float(entry["logprob"]), utf8, UNKNOWN_TOKEN_ID)


def timed_segments(body: Mapping[str, Any], text: str, duration_s: float) -> tuple[TranscriptSegment, ...]:
    """``verbose_json``'s segments, each with the words that start in it (OpenAI lists words apart)."""
    words = [
        WordTiming(str(w["word"]).strip(), float(w["start"]), float(w["end"]), UNKNOWN_WORD_PROBABILITY)
        for w in body.get("words") or ()
    ]
    raw = body.get("segments")
    if raw is None:  # words only: the text as one segment over the audio
        return (TranscriptSegment(text, 0.0, duration_s, words=tuple(words)),) if text else ()
    starts = [float(s["start"]) for s in raw]
    owned: list[list[WordTiming]] = [[] for _ in raw]
    for word in words:
        index = max((i for i, start in enumerate(starts) if start <= word.start_s + SEGMENT_START_SLACK_S), default=0)
        if owned:
            owned[index].append(word)
    return tuple(
        TranscriptSegment(
            text=str(s["text"]).strip(),
            start_s=float(s["start"]),
            end_s=float(s["end"]),
            words=tuple(mine),
            token_ids=tuple(int(t) for t in s.get("tokens") or ()),
            avg_logprob=_optional_float(s.get("avg_logprob")),
            no_speech_prob=_optional_float(s.get("no_speech_prob")),
        )
        for s, mine in zip(raw, owned, strict=True)
    )


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def wav_bytes(audio: Samples, rate_hz: int) -> bytes:
    """``audio`` as a mono 16-bit PCM WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(float_to_pcm16(audio))
    return out.getvalue()
