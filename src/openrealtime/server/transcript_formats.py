"""A transcript as OpenAI's audio endpoints return it: ``json``, ``text``, ``verbose_json``, ``srt``
and ``vtt``, and the events of a streamed transcription.

Pure functions of a :class:`~openrealtime.contracts.Transcript` and the audio's duration.
``verbose_json`` segments carry the decoder's own ``tokens`` (ids), ``avg_logprob`` and
``no_speech_prob`` (``0.0`` where a recogniser reports none); ``compression_ratio`` is computed as
Whisper computes it, from the text; ``temperature`` is ``0.0`` because decoding is greedy. With
``timestamp_granularities`` ``["word"]`` the body has ``words`` and no ``segments``, with both it
has both, as OpenAI's ``whisper-1`` answers. ``logprobs`` (``include: ["logprobs"]``) are OpenAI's
``[{token, logprob, bytes}]`` entries, whose tokens add up to the text they cover
(:mod:`~openrealtime.session.logprobs`).
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Collection, Iterator
from typing import Any

from openrealtime.contracts import Transcript, TranscriptSegment, WordTiming
from openrealtime.session.logprobs import wire_logprobs, word_logprobs

SECONDS_PER_SEEK = 0.01  # Whisper's ``seek`` counts 10 ms mel frames
SEGMENT = "segment"
WORD = "word"

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
    """One ``verbose_json`` segment, with the decoder's measures (``0.0`` where it gave none)."""
    return {
        "id": index,
        "seek": round(segment.start_s / SECONDS_PER_SEEK),
        "start": round(segment.start_s, 2),
        "end": round(segment.end_s, 2),
        "text": segment.text,
        "tokens": list(segment.token_ids),
        "temperature": 0.0,
        "avg_logprob": round(segment.avg_logprob, 6) if segment.avg_logprob is not None else 0.0,
        "compression_ratio": round(compression_ratio(segment.text), 4),
        "no_speech_prob": round(segment.no_speech_prob, 6) if segment.no_speech_prob is not None else 0.0,
    }


def word_json(word: WordTiming) -> dict[str, Any]:
    """One ``verbose_json`` word (OpenAI's ``TranscriptionWord``)."""
    return {"word": word.word, "start": round(word.start_s, 2), "end": round(word.end_s, 2)}


def text_logprobs(transcript: Transcript, *, space_before: bool = False) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs`` of the transcript's text (with a space before it when ``space_before``).

    The tokens are grouped by word so that they add up to the text exactly; in the unexpected case
    that they do not spell it, they are given as the decoder produced them.
    """
    words = word_logprobs(transcript)
    if words is not None:
        return wire_logprobs(words, space_before=space_before)
    return [{"token": t.text, "logprob": t.logprob, "bytes": list(t.utf8)} for t in transcript.tokens]


def render(
    transcript: Transcript,
    fmt: TranscriptFormat,
    *,
    duration_s: float,
    task: str,
    language: str | None,
    granularities: Collection[str] = (SEGMENT,),
    logprobs: bool = False,
) -> dict[str, Any] | str:
    """The body of a transcription (``task="transcribe"``) or translation (``"translate"``) response:
    a JSON object for the JSON formats, text for the others. ``granularities`` (``verbose_json``)
    choose ``segments`` and ``words``; ``logprobs`` adds them to a ``json`` body."""
    text = transcript.text.strip()
    if fmt is TranscriptFormat.JSON:
        if logprobs:
            return {"text": text, "logprobs": text_logprobs(transcript), "usage": duration_usage(duration_s)}
        return {"text": text, "usage": duration_usage(duration_s)}
    if fmt is TranscriptFormat.TEXT:
        return text + "\n"
    segments = timed_segments(transcript, duration_s)
    if fmt is TranscriptFormat.VERBOSE_JSON:
        code = language or transcript.language or "en"
        body: dict[str, Any] = {
            "task": task,
            "language": LANGUAGE_NAMES.get(code, code),
            "duration": round(duration_s, 2),
            "text": text,
        }
        if WORD in granularities:
            body["words"] = [word_json(w) for w in transcript.words]
        if SEGMENT in granularities or not granularities:
            body["segments"] = [segment_json(i, s) for i, s in enumerate(segments)]
        body["usage"] = duration_usage(duration_s)
        return body
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
    for event in delta_events(transcript, first=first, logprobs=False):
        yield event["delta"]


def delta_events(transcript: Transcript, *, first: bool, logprobs: bool) -> Iterator[dict[str, Any]]:
    """The ``transcript.text.delta`` events of one decoded window (see :func:`text_deltas`), each
    with the ``logprobs`` of exactly its text when ``logprobs``."""
    pieces: list[tuple[str, tuple[TranscriptSegment, ...]]] = [(s.text.strip(), (s,)) for s in transcript.segments]
    pieces = pieces or [(transcript.text.strip(), ())]
    for piece, segments in pieces:
        if piece:
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": piece if first else " " + piece}
            if logprobs:
                event["logprobs"] = text_logprobs(Transcript(piece, segments), space_before=not first)
            first = False
            yield event
