"""Whisper tiny.en looping in a short decode window (found by ``bench soak``: 4 of 10 askings of one
question came back as the question twice), caught by the speaking-rate guard of engines/whisper.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrealtime.client.audio_io import read_wav
from openrealtime.engines.whisper import _loop_repaired, _looped

LOOPING = Path(__file__).parent / "data" / "looping_question.wav"  # 2.4 s, recorded during the soak


def test_a_transcript_faster_than_speech_is_a_loop() -> None:
    assert _looped("What is the longest river in Africa? What is the longest river in Africa? What is the", 2.4)
    assert not _looped("What is the longest river in Africa?", 2.4)
    assert not _looped("yes I do", 0.4)  # quick, but too few words to call a loop
    assert not _looped("one two three four five six seven eight nine ten", 2.0)  # 5 words a second: fast speech
    # The same words twice in full, faster than people talk (the final decode of the looping question).
    doubled = "What is the longest river in Africa? What is the longest river in Africa?"
    assert _looped(doubled, 2.4)
    assert not _looped(doubled, 4.0), "3.5 words a second: said twice, perhaps"


def test_a_loop_that_says_the_words_again_from_their_start_is_taken_as_said_once() -> None:
    """The loops of bench turns' pause decodes (each came back so, run after run)."""
    assert _loop_repaired("Could you send the report? Could you send the report?", 1.2) == "Could you send the report?"
    looped = "I'd like to book a table for two people. I'd like to book a table for"
    assert _loop_repaired(looped, 2.48) == "I'd like to book a table for two people."
    looped = "Please remind me to call my mother tomorrow. Please remind me to call my mother tomorrow. Please"
    assert _loop_repaired(looped, 2.42) == "Please remind me to call my mother tomorrow."


def test_other_loops_are_left_to_a_decode_in_a_longer_window() -> None:
    assert _loop_repaired("I need a flight from... ... ... ... ... ... ... ... ... ...", 2.49) is None
    assert _loop_repaired("one two three four five one two", 1.0) is None, "two words again: no proof of a loop"
    # Said once, the words would still read faster than anyone speaks: not a loop of them.
    assert _loop_repaired("a b c d e f g h i j a b c d e f g h i j", 1.0) is None


@pytest.mark.real
def test_the_question_that_looped_is_heard_once() -> None:
    from openrealtime.contracts import TranscribeOptions
    from openrealtime.server.registry import load_transcriber
    from openrealtime.server.settings import Settings

    transcriber = load_transcriber(Settings())
    audio = read_wav(LOOPING, rate_hz=16_000)
    text = transcriber.transcribe(audio, TranscribeOptions(language="en")).text
    assert text.lower().count("longest river") == 1, text
    final = transcriber.transcribe(audio, TranscribeOptions(language="en", final=True)).text
    assert final.lower().count("longest river") == 1, final
    # Asked for its words' timings, the transcript's segments carry them: a longer window decodes it.
    timed = transcriber.transcribe(audio, TranscribeOptions(language="en", word_timestamps=True))
    assert timed.text.lower().count("longest river") == 1, timed.text
    assert " ".join(w.word for w in timed.words) == timed.text
