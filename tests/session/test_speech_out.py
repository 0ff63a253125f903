"""The translated pieces on their way out (SpeechOut) alone: each call's outputs compared whole.

Audio deltas are compared with their audio read back as a sample count (resampled audio is not
written out sample by sample); every other field is compared as the client sees it.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from openrealtime.contracts import Transcript
from openrealtime.protocol.codec import server_event_dict
from openrealtime.session.commands import (
    AudioChunk,
    JobFailed,
    SynthesisDone,
    Synthesize,
    TextTranslated,
    TranscriptReady,
)
from openrealtime.session.ids import Ids
from openrealtime.session.speech_out import SpeechOut, SpeechOutput, continue_case, spaced


def shown(outputs: list[SpeechOutput]) -> list[Any]:
    out: list[Any] = []
    for output in outputs:
        if isinstance(output, Synthesize):
            out.append(output)
            continue
        body = server_event_dict(output, "event_x")
        del body["event_id"]
        if body["type"] == "session.output_audio.delta":
            body["delta"] = len(base64.b64decode(body["delta"])) // 2  # PCM16 samples
        out.append(body)
    return out


def transcript(delta: str, elapsed_ms: int) -> dict[str, Any]:
    return {"type": "session.output_transcript.delta", "delta": delta, "elapsed_ms": elapsed_ms}


def audio(samples: int, elapsed_ms: int) -> dict[str, Any]:
    return {
        "type": "session.output_audio.delta",
        "delta": samples,
        "elapsed_ms": elapsed_ms,
        "format": "pcm16",
        "sample_rate": 24_000,
        "channels": 1,
    }


def speech(ms: int, rate_hz: int = 24_000) -> np.ndarray:
    return np.full(rate_hz * ms // 1000, 0.25, dtype=np.float32)


def out_with(*sources: tuple[str, str | None]) -> SpeechOut:
    """A queue holding one piece per (source text, translation job id or None to pass it through)."""
    queue = SpeechOut(Ids(deterministic=True))
    for source, job_id in sources:
        queue.add(source, target="es", voice_language="es-ES", job_id=job_id)
    return queue


def test_a_passed_through_piece_is_sent_and_spoken_at_once() -> None:
    queue = out_with(("Hello there.", None))
    assert shown(queue.advance(400)) == [
        transcript("Hello there.", 400),
        Synthesize("job_1", "Hello there.", language="es", voice="es-ES", speed=1.0),
    ]
    assert queue.owns("job_1")
    assert shown(queue.on_result(AudioChunk("job_1", speech(100), 24_000), 400)) == [audio(2400, 400)]
    assert shown(queue.on_result(SynthesisDone("job_1"), 400)) == []
    assert queue.idle
    assert not queue.owns("job_1")


def test_a_translation_continuing_a_sentence_keeps_its_lower_case_start() -> None:
    queue = out_with(("The meeting moved,", "job_t1"), ("so please send it.", "job_t2"))
    assert shown(queue.advance(0)) == []
    assert shown(queue.on_result(TextTranslated("job_t2", "Así que  envíalo."), 200)) == []  # waits for the first
    assert shown(queue.on_result(TextTranslated("job_t1", "La reunión se movió,"), 400)) == [
        transcript("La reunión se movió,", 400),
        transcript(" así que envíalo.", 400),
        Synthesize("job_1", "La reunión se movió,", language="es", voice="es-ES", speed=1.0),
    ]
    assert shown(queue.on_result(SynthesisDone("job_1"), 600)) == [
        Synthesize("job_2", "así que envíalo.", language="es", voice="es-ES", speed=1.0)
    ]


def test_speech_translation_takes_the_decoded_text() -> None:
    queue = out_with(("Buenos días.", "job_t1"))
    assert shown(queue.on_result(TranscriptReady("job_t1", Transcript(" Good  morning. ")), 800)) == [
        transcript("Good morning.", 800),
        Synthesize("job_1", "Good morning.", language="es", voice="es-ES", speed=1.0),
    ]


def test_an_empty_translation_is_neither_sent_nor_spoken() -> None:
    queue = out_with(("um", "job_t1"), ("Hello.", None))
    assert shown(queue.on_result(TextTranslated("job_t1", "  "), 200)) == [
        transcript("Hello.", 200),
        Synthesize("job_1", "Hello.", language="es", voice="es-ES", speed=1.0),
    ]


def test_a_failed_translation_is_reported_and_the_piece_left_out() -> None:
    queue = out_with(("The meeting moved,", "job_t1"), ("so please.", "job_t2"))
    queue.on_result(TextTranslated("job_t2", "así que por favor."), 200)
    assert shown(queue.on_result(JobFailed("job_t1", "translation_failed", "Apertium exited with 1"), 400)) == [
        {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": "translation_failed",
                "message": "Apertium exited with 1",
                "param": None,
                "event_id": None,
            },
        },
        transcript("así que por favor.", 400),
        Synthesize("job_1", "así que por favor.", language="es", voice="es-ES", speed=1.0),
    ]


def test_a_failed_synthesis_is_reported_and_the_next_piece_is_spoken() -> None:
    queue = out_with(("One.", None), ("Two.", None))
    queue.advance(0)
    assert shown(queue.on_result(JobFailed("job_1", "synthesis_failed", "no voice"), 200)) == [
        {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": "synthesis_failed",
                "message": "no voice",
                "param": None,
                "event_id": None,
            },
        },
        Synthesize("job_2", "Two.", language="es", voice="es-ES", speed=1.0),
    ]


def test_speech_at_another_rate_is_resampled_and_its_tail_flushed_at_the_end() -> None:
    queue = out_with(("Hello.", None))
    queue.advance(0)
    first = shown(queue.on_result(AudioChunk("job_1", speech(100, 22_050), 22_050), 0))
    empty = shown(queue.on_result(AudioChunk("job_1", speech(0, 22_050), 22_050), 0))
    tail = shown(queue.on_result(SynthesisDone("job_1"), 0))
    assert empty == []  # nothing came out: no event
    assert [e["type"] for e in first + tail] == ["session.output_audio.delta"] * 2
    assert sum(e["delta"] for e in first + tail) == 2400  # 100 ms at 24 kHz, whatever the split


def test_results_of_jobs_it_does_not_own_are_dropped() -> None:
    queue = out_with(("Hello.", None))
    queue.advance(0)
    assert queue.on_result(TextTranslated("job_404", "ghost"), 0) == []
    assert queue.on_result(SynthesisDone("job_404"), 0) == []


def test_the_listener_waits_once_a_second_has_passed_with_nothing_to_hear() -> None:
    queue = out_with(("Hello.", None))
    assert not queue.listener_idle(5000)  # a piece is on its way
    queue.advance(0)
    queue.on_result(AudioChunk("job_1", speech(500), 24_000), 0)
    queue.on_result(SynthesisDone("job_1"), 0)
    assert not queue.listener_idle(1499)  # heard until 500 ms
    assert queue.listener_idle(1500)


def test_speech_speeds_up_with_the_backlog_of_unheard_speech() -> None:
    queue = out_with(*[(f"Piece {i}.", None) for i in range(4)])
    synth = queue.advance(0)[-1]
    speeds = []
    for _ in range(4):
        assert isinstance(synth, Synthesize)
        speeds.append(synth.speed)
        queue.on_result(AudioChunk(synth.job_id, speech(1500), 24_000), 0)
        done = queue.on_result(SynthesisDone(synth.job_id), 0)
        synth = done[-1] if done else None
    # Unheard: 0, 1.5, 3 and 4.5 s; above 0.75 s it speeds up, reaching 1.35 at 3 s.
    assert speeds == [1.0, 1.12, 1.35, 1.35]
    assert queue.idle


@pytest.mark.parametrize(
    ("source", "translation", "cased"),
    [
        ("so please", "Así que", "así que"),
        ("So please", "Así que", "Así que"),  # the source starts a sentence
        ("nasa said", "NASA dijo", "NASA dijo"),  # an acronym keeps its capitals
        ("and", "", ""),
    ],
)
def test_continue_case(source: str, translation: str, cased: str) -> None:
    assert continue_case(source, translation) == cased


def test_spaced_deltas() -> None:
    assert [spaced("Hi", False), spaced("Hi", True), spaced(" Hi", True), spaced("", True)] == ["Hi", " Hi", " Hi", ""]
