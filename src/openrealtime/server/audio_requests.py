"""The requests of OpenAI's audio REST endpoints, read and checked: every field OpenAI defines is
honoured, or refused by name with OpenAI's error shape, before any engine work starts.

A form field this server does not know is ``unknown_parameter``; one OpenAI defines for models or
features this server lacks (``keywords``, diarization, custom voices) is ``unsupported_parameter`` /
``unsupported_value``; a bad value is ``invalid_value``, each with
the ``param`` at fault. Two fields are checked and then change nothing, as docs/architecture.md
says: ``temperature`` (decoding is greedy) and speech ``instructions`` (the voices take no style
prompt). Speech ``speed`` is OpenAI's 0.25-4.0, spoken at most at the voices' fastest
(:data:`~openrealtime.contracts.MAX_SPEED`, 2.0).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from openrealtime.contracts import MAX_SPEED, TranscribeOptions
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.media import SpeechFormat
from openrealtime.server.model_catalog import SPEECH_MODELS
from openrealtime.server.multipart import FormData, UploadedFile
from openrealtime.server.transcript_formats import LANGUAGE_NAMES, SEGMENT, WORD, TranscriptFormat

HTTP_BAD_REQUEST = 400
MIN_REQUEST_SPEED, MAX_REQUEST_SPEED = 0.25, 4.0  # OpenAI's range; the voices clamp to MAX_SPEED
MAX_TEMPERATURE = 1.0
ENGLISH = "en"
LOGPROBS = "logprobs"  # the one value of a transcription's include
DEFAULT_GRANULARITIES = frozenset({SEGMENT})

# The form fields of each endpoint (the SDK sends lists as "name[]").
TRANSCRIPTION_FIELDS = frozenset(
    {"model", "language", "prompt", "response_format", "temperature", "timestamp_granularities", "stream"}
    | {"include", "chunking_strategy"}
)
TRANSLATION_FIELDS = frozenset({"model", "prompt", "response_format", "temperature"})
# OpenAI's fields for models or features this server does not have: refused by name.
UNSUPPORTED_FIELDS = frozenset({"keywords", "known_speaker_names", "known_speaker_references", "languages"})
SPEECH_FIELDS = frozenset({"model", "input", "voice", "instructions", "response_format", "speed", "stream_format"})
STREAM_FORMATS = ("audio", "sse")
# OpenAI's built-in speech voices; each maps onto an installed voice (engines/piper_tts.py).
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"
)  # fmt: skip


class ApiError(Exception):
    """A refusal, as OpenAI's HTTP errors are shaped: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.error_type = status, message, code, param, error_type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def bad_request(message: str, *, param: str | None, code: str = "invalid_value") -> ApiError:
    return ApiError(HTTP_BAD_REQUEST, message, code=code, param=param)


class Fields:
    """A form's text fields read by name, each checked once and refused as OpenAI refuses it."""

    def __init__(self, form: FormData, allowed: frozenset[str]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, values in form.fields.items():
            key = name.removesuffix("[]")
            if key.startswith("chunking_strategy["):  # a server_vad object, sent as chunking_strategy[type]=...
                raise bad_request(
                    "Only chunking_strategy 'auto' is supported: long audio is cut at its pauses.",
                    param="chunking_strategy",
                    code="unsupported_value",
                )
            if key in UNSUPPORTED_FIELDS:
                raise bad_request(
                    f"Unsupported parameter: '{key}' is not supported by this server's models.",
                    param=key,
                    code="unsupported_parameter",
                )
            if key not in allowed:
                raise bad_request(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
            self._values.setdefault(key, []).extend(values)
        for name in form.files:
            if name != "file":
                raise bad_request(f"Unrecognized file field: {name}", param=name, code="unknown_parameter")

    def one(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise bad_request(f"'{name}' was given {len(values)} times; give it once.", param=name)
        return values[0]

    def many(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.one(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise bad_request(f"Invalid '{name}': expected a number, got {raw!r}.", param=name) from None
        if not (math.isfinite(value) and low <= value <= high):
            raise bad_request(f"Invalid '{name}': {value:g} is not between {low:g} and {high:g}.", param=name)
        return value

    def boolean(self, name: str) -> bool:
        raw = self.one(name)
        if raw is None or raw.lower() in ("false", "0", ""):
            return False
        if raw.lower() in ("true", "1"):
            return True
        raise bad_request(f"Invalid '{name}': expected true or false, got {raw!r}.", param=name)

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.one(name) or default
        if value not in allowed:
            raise bad_request(
                f"Invalid value: '{value}'. Supported values are: {', '.join(repr(a) for a in allowed)}.", param=name
            )
        return value


@dataclass(frozen=True)
class TranscriptionRequest:
    """A checked transcription or translation request."""

    audio_file: UploadedFile
    model: str
    options: TranscribeOptions
    response_format: TranscriptFormat
    stream: bool
    granularities: frozenset[str] = frozenset({SEGMENT})  # of a verbose_json body: segments, words


def _the_file(form: FormData) -> UploadedFile:
    files = form.files.get("file", [])
    if not files:
        message = "You must provide an audio 'file' in the form."
        raise bad_request(message, param="file", code="missing_required_parameter")
    if len(files) > 1:
        raise bad_request("Send one audio file per request.", param="file")
    return files[0]


def _model(fields: Fields, engines: EngineSet) -> str:
    model = fields.one("model")
    if not model:
        raise bad_request("You must provide a 'model'.", param="model", code="missing_required_parameter")
    if not engines.accepts_transcription_model(model):
        raise bad_request(
            f"Invalid model '{model}': this server transcribes with 'whisper-1', 'gpt-4o-transcribe', "
            f"'gpt-4o-mini-transcribe' (and the other names GET /v1/models lists).",
            param="model",
            code="model_not_found",
        )
    return model


def _format(fields: Fields) -> TranscriptFormat:
    return TranscriptFormat(fields.choice("response_format", tuple(TranscriptFormat), TranscriptFormat.JSON))


def transcription_request(form: FormData, engines: EngineSet) -> TranscriptionRequest:
    """The request of ``POST /v1/audio/transcriptions``; raises :class:`ApiError` (400) on any bad field."""
    fields = Fields(form, TRANSCRIPTION_FIELDS)
    model = _model(fields, engines)
    language = fields.one("language")
    if language is not None:
        language = language.strip().lower()
        if language not in LANGUAGE_NAMES:
            raise bad_request(f"Invalid language '{language}': give an ISO-639-1 code such as 'en'.", param="language")
        if not engines.transcriber.multilingual and language != "en":
            raise bad_request(
                f"This server's speech recognizer ({engines.transcriber_name}) knows English only; "
                "serve a multilingual model (--asr-model base) for other languages.",
                param="language",
                code="unsupported_value",
            )
    fmt = _format(fields)
    granularities = frozenset(fields.many("timestamp_granularities"))
    if unknown := sorted(granularities - {SEGMENT, WORD}):
        raise bad_request(f"Invalid timestamp granularity '{unknown[0]}'.", param="timestamp_granularities")
    if granularities and fmt is not TranscriptFormat.VERBOSE_JSON:
        raise bad_request(
            "timestamp_granularities needs response_format 'verbose_json'.", param="timestamp_granularities"
        )
    include = frozenset(fields.many("include"))
    if unknown := sorted(include - {LOGPROBS}):
        raise bad_request(f"Invalid value: '{unknown[0]}'. Supported values are: 'logprobs'.", param="include")
    if include and fmt is not TranscriptFormat.JSON:
        # OpenAI's rule: logprobs come only in the json body (and its stream's events).
        raise bad_request("include ['logprobs'] needs response_format 'json'.", param="include")
    fields.choice("chunking_strategy", ("auto",), "auto")
    fields.number("temperature", 0.0, 0.0, MAX_TEMPERATURE)
    stream = fields.boolean("stream")
    if stream and fmt not in (TranscriptFormat.JSON, TranscriptFormat.TEXT):
        message = "stream=true answers with transcript.text events; use response_format 'json' or 'text'."
        raise bad_request(message, param="stream")
    options = TranscribeOptions(
        language=language,
        prompt=fields.one("prompt") or None,
        timestamps=fmt.timed or stream,
        logprobs=LOGPROBS in include,
        word_timestamps=WORD in granularities,
        final=True,
    )
    return TranscriptionRequest(_the_file(form), model, options, fmt, stream, granularities or DEFAULT_GRANULARITIES)


def translation_request(form: FormData, engines: EngineSet) -> TranscriptionRequest:
    """The request of ``POST /v1/audio/translations`` (speech in any language, text in English)."""
    fields = Fields(form, TRANSLATION_FIELDS)
    model = _model(fields, engines)
    fmt = _format(fields)
    fields.number("temperature", 0.0, 0.0, MAX_TEMPERATURE)
    # Whisper's own speech-to-English task. An English-only model has no such task: its input can
    # only be English, which it transcribes (the tokenizer of an .en model ignores the task).
    options = TranscribeOptions(prompt=fields.one("prompt") or None, task="translate", timestamps=fmt.timed, final=True)
    return TranscriptionRequest(_the_file(form), model, options, fmt, stream=False)


@dataclass(frozen=True)
class SpeechRequest:
    """A checked ``POST /v1/audio/speech`` request."""

    model: str
    text: str
    voice: str
    response_format: SpeechFormat
    speed: float
    sse: bool


def speech_request(
    body: object, *, max_chars: int, formats: frozenset[SpeechFormat], voices: Collection[str]
) -> SpeechRequest:
    """The request of ``POST /v1/audio/speech``; raises :class:`ApiError` (400) on any bad field.

    ``voices`` are the names the English voice answers to besides OpenAI's (a piper model's own).
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", param=None, code="invalid_json")
    for key in body:
        if key not in SPEECH_FIELDS:
            raise bad_request(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
    for key in ("model", "input", "voice"):
        if body.get(key) is None:
            raise bad_request(f"You must provide '{key}'.", param=key, code="missing_required_parameter")
    model, text, voice = body["model"], body["input"], body["voice"]
    if model not in SPEECH_MODELS:
        supported = ", ".join(repr(m) for m in SPEECH_MODELS)
        raise bad_request(f"Invalid value: '{model}'. Supported values are: {supported}.", param="model")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("'input' must be non-empty text.", param="input")
    if len(text) > max_chars:
        raise bad_request(
            f"'input' is {len(text)} characters long; the limit is {max_chars}.",
            param="input",
            code="string_above_max_length",
        )
    if isinstance(voice, dict):
        raise bad_request(
            "Custom voices ({'id': ...}) are not available here; name a voice such as 'alloy'.",
            param="voice",
            code="unsupported_value",
        )
    if not isinstance(voice, str) or not voice:
        raise bad_request("'voice' must be a voice name such as 'alloy'.", param="voice")
    if voice not in OPENAI_VOICES and voice not in voices:
        supported = ", ".join(repr(v) for v in (*OPENAI_VOICES, *(v for v in voices if v not in OPENAI_VOICES)))
        raise bad_request(f"Invalid value: '{voice}'. Supported values are: {supported}.", param="voice")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be text.", param="instructions")
    fmt = body.get("response_format", SpeechFormat.MP3.value)
    if fmt not in [f.value for f in SpeechFormat]:
        supported = ", ".join(repr(f.value) for f in SpeechFormat)
        raise bad_request(f"Invalid value: '{fmt}'. Supported values are: {supported}.", param="response_format")
    if SpeechFormat(fmt) not in formats:
        raise bad_request(
            f"This server's FFmpeg has no encoder for '{fmt}'.", param="response_format", code="unsupported_value"
        )
    speed = body.get("speed", 1.0)
    number = isinstance(speed, int | float) and not isinstance(speed, bool)
    if not number or not MIN_REQUEST_SPEED <= speed <= MAX_REQUEST_SPEED:
        raise bad_request(f"'speed' must be a number from {MIN_REQUEST_SPEED} to {MAX_REQUEST_SPEED}.", param="speed")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise bad_request(
            f"Invalid value: '{stream_format}'. Supported values are: 'sse' and 'audio'.", param="stream_format"
        )
    return SpeechRequest(model, text, voice, SpeechFormat(fmt), min(float(speed), MAX_SPEED), stream_format == "sse")
