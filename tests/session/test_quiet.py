"""The pause's decode begun when the speech goes quiet, before the VAD calls the pause (session/quiet.py).

Silero calls a pause 33-87 ms after the last sound; 40 ms of quiet 30 dB under the speech is known
sooner, and a voice session starts the pause's final decode then. The fakes: a tone, and a VAD that
hears the tone's energy a frame longer than it lasts, as Silero's probability decays over its frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.engines.fake import EnergyVad, EnergyVadStream
from openrealtime.session.ids import Ids
from openrealtime.session.quiet import QUIET_MS, QuietWatch
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import quiet, tone
from tests.session.driver import Driver
from tests.session.test_flicker import WORDS, FinalsHeld, session_with

RATE_HZ = 16_000
HELD_FRAMES = 2  # a frame is speech while either of the last two had the tone's energy


class LateVadStream(EnergyVadStream):
    """The energy VAD's probability held over ``HELD_FRAMES`` frames, as Silero's decays over its
    frames: a pause is called at the second quiet frame (64-96 ms after the tone), after the quiet."""

    def __init__(self) -> None:
        self._recent: list[float] = []

    def probabilities(self, audio: Any) -> list[float]:
        out = []
        for probability in super().probabilities(audio):
            self._recent = [*self._recent[1 - HELD_FRAMES :], probability]
            out.append(max(self._recent))
        return out


class LateVad(EnergyVad):
    def new_stream(self) -> LateVadStream:  # type: ignore[override]
        return LateVadStream()


def watched(*pieces: np.ndarray) -> tuple[QuietWatch, SampleBuffer]:
    """A watch that has scanned ``pieces`` (16 kHz), appended one after another."""
    watch, buffer = QuietWatch(RATE_HZ), SampleBuffer(max_samples=60 * RATE_HZ)
    for piece in pieces:
        buffer.append(piece.astype(np.float32))
        watch.scan(buffer)
    return watch, buffer


def test_the_watch_finds_where_the_speech_went_quiet() -> None:
    watch, _ = watched(tone(500, rate_hz=RATE_HZ), quiet(100, rate_hz=RATE_HZ))
    assert watch.quiet_since == 8_000
    assert watch.quiet_samples == 1_600


def test_a_quieter_phrase_is_speech_and_30_db_under_it_is_quiet() -> None:
    watch, _ = watched(tone(500, rate_hz=RATE_HZ), tone(200, amplitude=0.01, rate_hz=RATE_HZ))
    assert watch.quiet_since is None, "20 dB under the speech is still speech"
    watch, _ = watched(tone(500, rate_hz=RATE_HZ), tone(60, amplitude=0.002, rate_hz=RATE_HZ))
    assert watch.quiet_since == 8_000, "34 dB under it is quiet"
    watch, _ = watched(tone(500, rate_hz=RATE_HZ), tone(300, amplitude=0.002, rate_hz=RATE_HZ))
    assert watch.quiet_since is None, "the speech's level fades: a long quieter phrase is speech"


def test_noise_less_than_30_db_under_the_speech_is_never_quiet() -> None:
    noise = np.random.default_rng(1).normal(0.0, 0.004, 16_000)  # -25 dB under the tone's 0.07 RMS
    speech = tone(500, rate_hz=RATE_HZ) + noise[:8_000]
    watch, _ = watched(speech, noise[8_000:])
    assert watch.quiet_since is None


def realtime(turn_detection: dict[str, Any]) -> FinalsHeld:
    driver = session_with(turn_detection, vad=LateVad())
    driver.hold_finals = True
    return driver


def go_quiet(driver: FinalsHeld, quiet_ms: int) -> None:
    """``quiet_ms`` of quiet in 20 ms chunks, as a client streams it."""
    for _ in range(quiet_ms // 20):
        driver.append(quiet(20))


def speak_then_quiet(driver: FinalsHeld, quiet_ms: int) -> None:
    driver.append(tone(3200))
    go_quiet(driver, quiet_ms)


def test_the_pause_decode_starts_on_the_quiet_and_the_vad_pause_takes_it() -> None:
    driver = realtime({"type": "semantic_vad", "eagerness": "medium"})
    speak_then_quiet(driver, QUIET_MS + 20)
    [early] = driver.held_finals
    assert driver.session.buffer.turn.pause_start is None, "asked before the VAD's pause"
    go_quiet(driver, 160)  # the VAD calls the pause 64-96 ms after the tone's end
    assert driver.session.buffer.turn.pause_start is not None
    assert driver.held_finals == [early], "the pause takes the decode begun on the quiet"
    assert driver.held_llm == [], "an answer waits for the pause's words"
    driver.finish(early)
    [answer] = driver.held_llm
    assert answer.request.messages[-1]["content"] == WORDS


def test_words_known_before_the_vad_pause_begin_the_answer_at_the_pause() -> None:
    driver = realtime({"type": "semantic_vad", "eagerness": "medium"})
    speak_then_quiet(driver, QUIET_MS + 20)
    [early] = driver.held_finals
    driver.finish(early)
    assert driver.held_llm == [], "not before the VAD's pause: the speaker may go on"
    go_quiet(driver, 160)
    [answer] = driver.held_llm
    assert answer.request.messages[-1]["content"] == WORDS


def test_speech_back_before_the_vad_pause_drops_the_early_decode() -> None:
    driver = realtime({"type": "semantic_vad", "eagerness": "medium"})
    speak_then_quiet(driver, QUIET_MS + 20)
    [early] = driver.held_finals
    driver.append(tone(20))  # a stop consonant's burst: the quiet was its closure
    assert early.job_id in driver.cancelled
    driver.finish(early)  # a late result of the cancelled decode is dropped by id
    driver.append(tone(500))
    assert driver.held_llm == []
    go_quiet(driver, 200)
    [again] = driver.held_finals
    assert again.job_id != early.job_id
    driver.finish(again)
    [answer] = driver.held_llm
    assert answer.request.messages[-1]["content"] == "hello world this is a test of"


def test_a_transcription_session_with_a_long_silence_rule_decodes_near_its_end_not_on_the_quiet() -> None:
    info = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    session = TranscriptionSession(info, vad=LateVad(), ids=Ids(deterministic=True))
    driver = Driver(session, hold=True)
    driver.pump()
    vad = {"type": "server_vad", "silence_duration_ms": 500}
    transcription = {"transcription": {"model": "whisper-1"}, "turn_detection": vad}
    driver.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": transcription}}})
    driver.append(tone(3200))
    go_quiet(driver, 160)
    assert not [c for c in driver.held if c.final], "its final starts 250 ms before the silence rule ends the turn"
