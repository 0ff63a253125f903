"""A transcript as OpenAI's audio endpoints return it: ``json``, ``text``, ``verbose_json``, ``srt``
and ``vtt``, and the events of a streamed transcription.

Pure functions of a :class:`~openrealtime.contracts.Transcript` and the audio's duration. The
``verbose_json`` segment fields that our recognisers do not report through the
:class:`~openrealtime.contracts.Transcriber` contract (``tokens``, ``avg_logprob``,
``no_speech_prob``) are given neutral values: ``[]``, ``0.0`` and ``0.0`` (a segment is only
returned at all when Whisper judged the audio to be speech). ``compression_ratio`` is computed as
Whisper computes it, from the text; ``temperature`` is ``0.0`` because decoding is greedy.
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Iterator
from typing import Any

from openrealtime.contracts import Transcript, TranscriptSegment

SECONDS_PER_SEEK = 0.01  # Whisper's ``seek`` counts 10 ms mel frames

# Whisper's languages by ISO-639-1 code (``yue`` and ``haw`` have none), named as ``verbose_json`` names them.
LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao",
    "uz": "uzbek", "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa",
    "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip


class TranscriptFormat(enum.StrEnum):
    """OpenAI's ``response_format`` values for transcriptions and translations."""

    JSON = "json"
    TEXT = "text"
    VERBOSE_JSON = "verbose_json"
    SRT = "srt"
    VTT = "vtt"

    @property
    def timed(self) -> bool:
        """Whether the format needs segment times (so the decode must produce them)."""
        return self in (TranscriptFormat.VERBOSE_JSON, TranscriptFormat.SRT, TranscriptFormat.VTT)

    @property
    def media_type(self) -> str:
        if self in (TranscriptFormat.JSON, TranscriptFormat.VERBOSE_JSON):
            return "application/json"
        return "text/vtt" if self is TranscriptFormat.VTT else "text/plain"


def duration_usage(duration_s: float) -> dict[str, Any]:
    """``usage`` as OpenAI bills audio models by duration: whole seconds, rounded up."""
    return {"type": "duration", "seconds": math.ceil(duration_s)}


def timed_segments(transcript: Transcript, duration_s: float) -> tuple[TranscriptSegment, ...]:
    """The transcript's segments, or the whole text as one segment over the audio when it has none."""
    if transcript.segments or not transcript.text.strip():
        return transcript.segments
    return (TranscriptSegment(transcript.text.strip(), 0.0, duration_s),)


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: the text's UTF-8 length over its zlib-compressed length."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def segment_json(index: int, segment: TranscriptSegment) -> dict[str, Any]:
    """One ``verbose_json`` segment (see the module docstring for the fields we cannot measure)."""
    return {
        "id": index,
        "seek": round(segment.start_s / SECONDS_PER_SEEK),
        "start": round(segment.start_s, 2),
        "end": round(segment.end_s, 2),
        "text": segment.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": 0.0,
        "compression_ratio": round(compression_ratio(segment.text), 4),
        "no_speech_prob": 0.0,
    }


def render(
    transcript: Transcript, fmt: TranscriptFormat, *, duration_s: float, task: str, language: str | None
) -> dict[str, Any] | str:
    """The body of a transcription (``task="transcribe"``) or translation (``"translate"``) response:
    a JSON object for the JSON formats, text for the others."""
    text = transcript.text.strip()
    if fmt is TranscriptFormat.JSON:
        return {"text": text, "usage": duration_usage(duration_s)}
    if fmt is TranscriptFormat.TEXT:
        return text + "\n"
    segments = timed_segments(transcript, duration_s)
    if fmt is TranscriptFormat.VERBOSE_JSON:
        code = language or transcript.language or "en"
        return {
            "task": task,
            "language": LANGUAGE_NAMES.get(code, code),
            "duration": round(duration_s, 2),
            "text": text,
            "segments": [segment_json(i, s) for i, s in enumerate(segments)],
            "usage": duration_usage(duration_s),
        }
    return subtitles(segments, vtt=fmt is TranscriptFormat.VTT)


def _timestamp(seconds: float, *, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(segments: tuple[TranscriptSegment, ...], *, vtt: bool) -> str:
    """SubRip (numbered cues, ``00:00:01,500``) or WebVTT (a ``WEBVTT`` header, ``00:00:01.500``)."""
    separator = "." if vtt else ","
    cues: list[str] = ["WEBVTT\n"] if vtt else []
    for number, segment in enumerate(segments, start=1):
        start, end = (_timestamp(t, separator=separator) for t in (segment.start_s, segment.end_s))
        times = f"{start} --> {end}"
        cue = f"{times}\n{segment.text}\n" if vtt else f"{number}\n{times}\n{segment.text}\n"
        cues.append(cue)
    return "\n".join(cues) + ("" if cues else "\n")


def text_deltas(transcript: Transcript, *, first: bool) -> Iterator[str]:
    """The ``transcript.text.delta`` texts of one decoded window, one per segment: they add up, with
    every earlier window's, to the ``transcript.text.done`` text (words joined by single spaces)."""
    pieces = [s.text.strip() for s in transcript.segments] or [transcript.text.strip()]
    for piece in pieces:
        if piece:
            yield piece if first else " " + piece
            first = False
