"""Whisper tiny.en looping in a short decode window (found by ``bench soak``: 4 of 10 askings of one
question came back as the question twice), caught by the speaking-rate guard of engines/whisper.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrealtime.client.audio_io import read_wav
from openrealtime.engines.whisper import _looped

LOOPING = Path(__file__).parent / "data" / "looping_question.wav"  # 2.4 s, recorded during the soak


def test_a_transcript_faster_than_speech_is_a_loop() -> None:
    assert _looped("What is the longest river in Africa? What is the longest river in Africa? What is the", 2.4)
    assert not _looped("What is the longest river in Africa?", 2.4)
    assert not _looped("yes I do", 0.4)  # quick, but too few words to call a loop
    assert not _looped("one two three four five six seven eight nine ten", 2.0)  # 5 words a second: fast speech


@pytest.mark.real
def test_the_question_that_looped_is_heard_once() -> None:
    from openrealtime.contracts import TranscribeOptions
    from openrealtime.server.registry import load_transcriber
    from openrealtime.server.settings import Settings

    transcriber = load_transcriber(Settings())
    audio = read_wav(LOOPING, rate_hz=16_000)
    text = transcriber.transcribe(audio, TranscribeOptions(language="en")).text
    assert text.lower().count("longest river") == 1, text
