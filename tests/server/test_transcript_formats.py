"""Transcripts as OpenAI's response formats: subtitles, verbose segments, stream deltas."""

from __future__ import annotations

import pytest

from openrealtime.contracts import Transcript, TranscriptSegment
from openrealtime.server.transcript_formats import TranscriptFormat, render, subtitles, text_deltas

LONG = (TranscriptSegment("After an hour.", 3_601.25, 3_662.5),)


def test_subtitle_times_count_hours_and_milliseconds() -> None:
    assert subtitles(LONG, vtt=False) == "1\n01:00:01,250 --> 01:01:02,500\nAfter an hour.\n"
    assert subtitles(LONG, vtt=True) == "WEBVTT\n\n01:00:01.250 --> 01:01:02.500\nAfter an hour.\n"
    assert subtitles((), vtt=False) == "\n"
    assert subtitles((), vtt=True) == "WEBVTT\n"


def test_text_without_segments_is_one_segment_over_the_audio() -> None:
    body = render(
        Transcript("Hi there."), TranscriptFormat.VERBOSE_JSON, duration_s=1.5, task="translate", language=None
    )
    assert isinstance(body, dict)
    assert body["language"] == "english"
    assert [(s["start"], s["end"], s["text"]) for s in body["segments"]] == [(0.0, 1.5, "Hi there.")]
    assert body["segments"][0]["compression_ratio"] == pytest.approx(9 / 17, abs=1e-4)
    silent = render(Transcript(""), TranscriptFormat.SRT, duration_s=1.5, task="transcribe", language=None)
    assert silent == "\n"


def test_a_language_is_named_as_whisper_names_it() -> None:
    body = render(
        Transcript("Hola.", language="es"),
        TranscriptFormat.VERBOSE_JSON,
        duration_s=1,
        task="transcribe",
        language=None,
    )
    assert isinstance(body, dict)
    assert body["language"] == "spanish"


def test_deltas_of_later_windows_start_with_a_space() -> None:
    window = Transcript("a b c", (TranscriptSegment("a b", 0, 1), TranscriptSegment(" c ", 1, 2)))
    assert list(text_deltas(window, first=True)) == ["a b", " c"]
    assert list(text_deltas(window, first=False)) == [" a b", " c"]
    assert list(text_deltas(Transcript("x"), first=True)) == ["x"]
    assert list(text_deltas(Transcript(""), first=True)) == []


def test_media_types() -> None:
    assert [f.media_type for f in TranscriptFormat] == [
        "application/json",
        "text/plain",
        "application/json",
        "text/plain",
        "text/vtt",
    ]
