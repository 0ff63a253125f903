"""A flicker of the VAD in the end-of-turn pause keeps the pause's words and the answer begun on them.

Silero often calls the closure before a last consonant a pause and its burst speech again
("homewor|k"): the pause's final decode was cancelled and asked again, and the answer begun on it
restarted (100-150 ms in 5 of 39 clips of ``bench turns``). Now speech that stops again within
``FLICKER_MS`` keeps them, and the next pause's decode confirms them when it hears the same words.

The fakes: a tone the energy VAD hears (32 ms frames), a transcriber that hears two words a second
of tone (3.2 s: "hello world this is a test"), the LLM held until the test runs it.
"""

from __future__ import annotations

from typing import Any

from openrealtime.engines.fake import EnergyVad
from openrealtime.session.commands import Command, Generate, Transcribe, TranscriptReady
from openrealtime.session.flicker import FLICKER_MS, FLICKER_SPAN_MS
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import quiet, tone
from tests.session.driver import RealtimeDriver

COMPLETE = 0.95
CLOSURE = 60  # the silence before a last consonant that the VAD takes for a pause
FLICKER = 64  # two 32 ms frames of speech: the consonant's burst
WORDS = "hello world this is a test"


class FinalsHeld(RealtimeDriver):
    """A realtime driver that keeps final decodes (``held_finals``) until the test resolves them."""

    def __init__(self, session: Any, **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self.hold_finals = False
        self.held_finals: list[Transcribe] = []
        drain = session.drain

        def held_drain() -> tuple[list[Any], list[Command]]:
            events, commands = drain()
            if not self.hold_finals:
                return events, commands
            self.held_finals += [c for c in commands if isinstance(c, Transcribe) and c.final]
            return events, [c for c in commands if not (isinstance(c, Transcribe) and c.final)]

        session.drain = held_drain

    def finish(self, command: Transcribe) -> list[dict[str, Any]]:
        self.held_finals.remove(command)
        self.session.on_result(TranscriptReady(command.job_id, self.asr.transcribe(command.audio, command.options)))
        return self.pump()


def session_with(turn_detection: dict[str, Any], vad: Any = None) -> FinalsHeld:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    session = RealtimeSession(
        RealtimeInfo(base=base, model="gpt-realtime", context_tokens=4096, instructions="Be brief."),
        vad=vad or EnergyVad(),
        ids=Ids(deterministic=True),
    )
    driver = FinalsHeld(session, hold_questions=True, hold_llm=True)
    driver.pump()
    audio = {"input": {"turn_detection": turn_detection}}
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": audio}})
    return driver


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def answer_begun(driver: FinalsHeld, speech_ms: int = 3200) -> Generate:
    """Speech, then the closure before a last consonant, whose words begin an answer (held)."""
    driver.append(tone(speech_ms))
    for _ in range(6):  # as soon as the VAD calls the pause (20 ms chunks; the resampler holds some)
        driver.append(quiet(20))
        if driver.held_llm:
            break
    [early] = driver.held_llm
    driver.held_llm.clear()
    return early


def test_an_answer_begun_in_the_pause_survives_a_flicker_when_the_next_pause_hears_the_same_words() -> None:
    driver = session_with({"type": "semantic_vad", "eagerness": "medium"})
    early = answer_begun(driver)
    assert early.request.messages[-1]["content"] == WORDS
    driver.run_llm(early)  # its first clause is spoken (held in the pause)
    driver.append(tone(FLICKER))  # the VAD hears a last consonant's burst...
    events = driver.append(quiet(200))  # ...then the pause again: its own decode hears the same words
    assert early.job_id not in driver.cancelled
    assert driver.held_llm == [], "the answer is not asked again"
    assert "input_audio_buffer.speech_stopped" not in types(events)
    driver.append(quiet(100))  # by now the model was asked, check_pause_ms into this pause
    assert len(driver.questions) == 1
    driver.answer_questions(COMPLETE)
    kinds = types(driver.pump())
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    assert "response.output_audio.delta" in kinds
    assert driver.held_llm == []


def test_a_flicker_that_changes_the_words_replaces_the_answer() -> None:
    driver = session_with({"type": "semantic_vad", "eagerness": "medium"})
    early = answer_begun(driver, speech_ms=2990)  # "hello world this is a"
    assert early.request.messages[-1]["content"] == "hello world this is a"
    driver.append(tone(FLICKER))  # a flicker that ends a word: 3.05 s of tone is six words
    driver.append(quiet(200))
    assert early.job_id in driver.cancelled
    [again] = driver.held_llm
    assert again.request.messages[-1]["content"] == WORDS


def test_speech_longer_than_a_flicker_drops_the_answer_as_soon_as_it_outlasts_it() -> None:
    driver = session_with({"type": "semantic_vad", "eagerness": "medium"})
    early = answer_begun(driver)
    driver.append(tone(FLICKER_MS - 100))
    assert early.job_id not in driver.cancelled, "still within a flicker"
    driver.append(tone(300))
    assert early.job_id in driver.cancelled, "the speaker goes on"
    driver.append(quiet(200))
    [again] = driver.held_llm
    assert again.request.messages[-1]["content"] == "hello world this is a test of"


def test_a_decode_running_at_the_flicker_goes_on_and_begins_the_answer() -> None:
    driver = session_with({"type": "server_vad", "silence_duration_ms": 500})
    driver.hold_finals = True
    driver.append(tone(3200))
    driver.append(quiet(CLOSURE))
    driver.append(tone(FLICKER))
    [first] = driver.held_finals
    assert first.job_id not in driver.cancelled, "the pause's decode is kept across the flicker"
    driver.append(quiet(100))
    [first, second] = driver.held_finals
    driver.finish(first)  # the kept decode's words: the answer begins on them
    [early] = driver.held_llm
    assert early.request.messages[-1]["content"] == WORDS
    driver.finish(second)  # the new pause's decode hears the same words: the answer stays
    assert early.job_id not in driver.cancelled
    assert driver.held_llm == [early]
    driver.hold_finals = False
    events = driver.append(quiet(500))  # server_vad's silence ends the turn: the answer goes out
    assert "input_audio_buffer.speech_stopped" in types(events)
    assert "response.created" in types(events)
    assert driver.held_llm == [early]
    assert early.job_id not in driver.cancelled


def test_the_next_pause_decoded_first_makes_the_kept_decode_void() -> None:
    driver = session_with({"type": "server_vad", "silence_duration_ms": 500})
    driver.hold_finals = True
    driver.append(tone(3200))
    driver.append(quiet(CLOSURE))
    driver.append(tone(FLICKER))
    driver.append(quiet(100))
    [first, second] = driver.held_finals
    driver.finish(second)
    assert first.job_id in driver.cancelled
    [answer] = driver.held_llm
    assert answer.request.messages[-1]["content"] == WORDS
    assert driver.finish(first) == [], "its late result is dropped by id"
    assert driver.held_llm == [answer]


def test_an_answer_on_words_the_turns_end_did_not_confirm_is_made_again_from_the_final() -> None:
    driver = session_with({"type": "server_vad", "silence_duration_ms": 500})
    driver.hold_finals = True
    driver.append(tone(3200))
    driver.append(quiet(CLOSURE))
    [first] = driver.held_finals
    driver.finish(first)
    [early] = driver.held_llm
    driver.append(tone(FLICKER))
    driver.append(quiet(100))
    assert early.job_id not in driver.cancelled, "kept into the next pause"
    events = driver.append(quiet(500))  # the turn ends before the new pause's decode is back
    assert "input_audio_buffer.speech_stopped" in types(events)
    assert early.job_id in driver.cancelled, "its words were never confirmed"
    [final] = driver.held_finals
    driver.finish(final)
    [answer] = driver.held_llm  # the cancelled one is gone
    assert answer.job_id != early.job_id
    assert answer.request.messages[-1]["content"] == WORDS


def test_a_transcription_only_session_drops_the_pauses_decode_at_once() -> None:
    from openrealtime.engines.fake import FakeTranscriber
    from openrealtime.session.transcription import TranscriptionSession
    from tests.session.driver import Driver

    info = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    driver = Driver(TranscriptionSession(info, vad=EnergyVad(), ids=Ids(deterministic=True)), FakeTranscriber())
    driver.hold = True
    driver.pump()
    td = {"type": "server_vad", "silence_duration_ms": 300}
    asr = {"model": "whisper-1", "language": "en"}
    update = {"type": "transcription", "audio": {"input": {"transcription": asr, "turn_detection": td}}}
    driver.send({"type": "session.update", "session": update})
    driver.append(tone(1000))
    driver.held.clear()
    driver.append(quiet(200))  # 100 ms before the silence ends the turn, its final starts
    [speculative] = [c for c in driver.held if c.final]
    driver.append(tone(FLICKER))
    assert speculative.job_id in driver.cancelled, "no answer to keep: the decode is not kept"


def test_a_pause_that_began_long_before_the_next_one_keeps_nothing() -> None:
    """Its decode missed more of the last word ("capital of friend?" for "...France?")."""
    driver = session_with({"type": "semantic_vad", "eagerness": "medium"})
    early = answer_begun(driver)
    driver.append(quiet(FLICKER_SPAN_MS))  # the same pause, longer...
    driver.append(tone(FLICKER))
    assert early.job_id not in driver.cancelled, "still within a flicker"
    driver.append(quiet(100))  # ...then a pause too far after it
    assert early.job_id in driver.cancelled
    [again] = driver.held_llm
    assert again.request.messages[-1]["content"] == WORDS
