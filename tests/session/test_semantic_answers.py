"""semantic_vad and the answer begun in the pause: ready when the turn ends, gone when it does not.

The end-of-turn model is answered by hand (held questions), the LLM is held until the test runs it,
the voice is the fake tone synthesizer. Speech is a tone the energy VAD hears (its pause is seen one
32 ms frame late); the fake transcriber hears two words a second, so 3.2 s of tone is the finished
"hello world this is a test".
"""

from __future__ import annotations

from typing import Any

from openrealtime.engines.fake import EnergyVad
from openrealtime.session.commands import Generate
from openrealtime.session.endpointing import END_OF_TURN
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import quiet, tone
from tests.session.driver import RealtimeDriver

MEDIUM = END_OF_TURN["medium"]
INCOMPLETE = 0.1  # under every eagerness's threshold
COMPLETE = 0.95


def answering(eagerness: str = "medium") -> RealtimeDriver:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    session = RealtimeSession(
        RealtimeInfo(base=base, model="gpt-realtime", context_tokens=4096, instructions="Be brief."),
        vad=EnergyVad(),
        ids=Ids(deterministic=True),
    )
    driver = RealtimeDriver(session, hold_questions=True, hold_llm=True)
    driver.pump()
    td = {"type": "semantic_vad", "eagerness": eagerness}
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    return driver


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def said(events: list[dict[str, Any]]) -> list[str]:
    return [t for t in types(events) if t.startswith("response.")]


def spoken_then_paused(driver: RealtimeDriver) -> Generate:
    """3.2 s of finished words, then a pause in which the answer is begun and its first clause spoken
    (held); returns the answer's LLM command."""
    driver.append(tone(3200))
    events = driver.append(quiet(200))
    assert said(events) == [], "nothing is said before the turn ends"
    [early] = driver.held_llm
    assert early.request.messages[-1] == {"role": "user", "content": "hello world this is a test"}
    driver.held_llm.clear()
    driver.run_llm(early)  # the answer's first clause is synthesized at once (the fake TTS is not held)
    assert said(driver.pump()) == []
    assert len(driver.questions) == 1  # asked at check_pause_ms, in parallel with the answer
    return early


def test_the_answer_begun_in_the_pause_survives_a_recheck_and_goes_out_at_once_when_the_turn_ends() -> None:
    driver = answering()
    early = spoken_then_paused(driver)
    driver.answer_questions(INCOMPLETE)  # the model: the speaker goes on
    # The same pause goes on to the recheck (recheck_ms after the first question), which comes before
    # the 2.5x word rule (1.25 s) would end the turn.
    events: list[dict[str, Any]] = []
    while not driver.questions and len(events) < 100:
        events += driver.append(quiet(20)) or [{"type": "-"}]
    assert len(driver.questions) == 1, "asked again in the same pause"
    assert "input_audio_buffer.speech_stopped" not in types(events)
    assert said(events) == []
    assert early.job_id not in driver.cancelled, "the answer is kept across the recheck"
    driver.answer_questions(COMPLETE)
    events = driver.pump()
    kinds = types(events)
    # The turn ends, and in the same step the held answer goes out: created, its first clause's words,
    # then its audio; nothing is generated again.
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    created = kinds.index("response.created")
    assert kinds.index("response.output_audio_transcript.delta") > created
    assert "response.output_audio.delta" in kinds[created:]
    assert driver.held_llm == []
    assert early.job_id not in driver.cancelled


def test_the_answer_begun_in_the_pause_goes_out_when_the_word_rule_ends_a_doubted_turn() -> None:
    driver = answering()
    early = spoken_then_paused(driver)
    driver.answer_questions(INCOMPLETE)
    # No recheck answer comes; the finished words end the turn after 2.5x the word rule's 500 ms.
    events = driver.append(quiet(1_300))
    assert "input_audio_buffer.speech_stopped" in types(events)
    assert "response.output_audio.delta" in types(events)
    assert driver.held_llm == []
    assert early.job_id not in driver.cancelled


def test_the_answer_begun_in_the_pause_is_dropped_unseen_when_the_speaker_goes_on() -> None:
    driver = answering()
    early = spoken_then_paused(driver)
    driver.answer_questions(INCOMPLETE)
    events = driver.append(tone(800))  # "... of": the speaker goes on
    assert early.job_id in driver.cancelled
    assert said(events) == []
    # The turn then ends at a pause the model calls complete: its answer is made from all its words.
    events = driver.append(quiet(200))
    [again] = driver.held_llm
    assert again.request.messages[-1]["content"] == "hello world this is a test of"
    driver.answer_questions(COMPLETE)
    assert said(driver.pump()) == [], "the words trail off ('of'): the model alone cannot end the turn"
    assert said(driver.events) == []


def test_an_answer_not_ready_at_the_turn_end_is_created_then_and_speaks_when_its_words_come() -> None:
    driver = answering("high")
    driver.append(tone(3200))
    driver.append(quiet(200))
    [early] = driver.held_llm
    driver.held_llm.clear()
    driver.answer_questions(COMPLETE)  # the model decides before the LLM has said a word
    events = driver.pump()
    assert said(events) == ["response.created"]
    driver.run_llm(early)
    driver.hold_llm = False
    events = driver.pump()
    assert "response.output_audio.delta" in types(events)
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert driver.held_llm == []


def test_the_answer_and_the_text_signal_are_warmed_with_the_words_heard_while_the_user_speaks() -> None:
    """Each live caption of the turn hands its words but the last (which may still change) to the
    LLM ahead of the pause: the answer's prompt and the text signal's, each once per new words."""
    from openrealtime.session.commands import WarmAnswer, WarmTurnWords

    driver = answering()
    driver.append(tone(3200))
    answers = [w for w in driver.warmed if isinstance(w, WarmAnswer)]
    words = [w for w in driver.warmed if isinstance(w, WarmTurnWords)]
    assert answers
    assert words
    heard = [w.request.messages[-1]["content"] for w in answers]
    assert heard == [w.words for w in words]
    assert len(set(heard)) == len(heard), "the same words are not warmed twice"
    assert all("hello world this is a test".startswith(text) for text in heard)
    assert heard[-1] != "hello world this is a test", "the last word heard is left out"
    last = answers[-1].request
    assert last.cache_key == "sess_1"
    driver.append(quiet(200))
    [early] = driver.held_llm  # the answer at the pause has the warmed prompt as its prefix
    assert early.request.messages[:-1] == last.messages[:-1]
    assert early.request.messages[-1]["content"].startswith(last.messages[-1]["content"])
