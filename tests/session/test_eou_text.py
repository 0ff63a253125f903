"""semantic_vad's text signal: the LLM's P(end of message) after the pause's words vetoes Smart Turn's
"complete" on a fragment, and changes nothing else.

The fakes as in ``test_semantic_vad``: a tone the energy VAD hears, a transcriber that hears two words
a second of it (3.2 s: "hello world this is a test", 1.6 s: "hello world this", which trails off),
a fixed Smart Turn, and the LLM's answer by words.
"""

from __future__ import annotations

from typing import Any

from openrealtime.engines.fake import FixedEndOfTurn
from openrealtime.session.commands import (
    END_OF_TURN_TEXT_UNAVAILABLE,
    JobFailed,
    ScoreTurnWords,
    TurnEndPredicted,
)
from openrealtime.session.endpointing import END_OF_TURN
from openrealtime.session.eou_text import (
    ANSWER_MS,
    CLEAR_ABOVE,
    KEPT_WORDS,
    MAX_HOLD_MS,
    VETO_BELOW,
    WAIT_PAUSE_MS,
    TextSignal,
    WordsEndOfTurn,
)
from openrealtime.session.ids import Ids
from tests.conftest import quiet, tone
from tests.session.test_semantic_vad import pause_before_stop, semantic

FRAGMENT = VETO_BELOW / 100  # "please remind me to call"
WHOLE = VETO_BELOW * 100  # "what is the capital of france"
MEDIUM = END_OF_TURN["medium"]


def stopped(events: list[dict[str, Any]]) -> bool:
    return "input_audio_buffer.speech_stopped" in [e["type"] for e in events]


class Llm:
    """The LLM's text signal: one probability for any words; records what it was asked."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[str] = []

    def __call__(self, words: str) -> float:
        self.asked.append(words)
        return self.probability


def test_a_low_end_probability_vetoes_smart_turns_complete_and_the_words_wait_the_doubted_pause() -> None:
    llm = Llm(FRAGMENT)
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99), end_of_turn_text=llm)
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert not stopped(events), "Smart Turn's 0.99 alone no longer ends it"
    assert llm.asked == ["hello world this is a test"]
    events = driver.append(quiet(600))
    assert 1250 <= pause_before_stop(events, 3200) < 1350  # 2.5 x the word rule's 500 ms


def test_a_whole_message_ends_a_turn_smart_turn_doubts_after_the_rescued_pause_not_sooner() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.01), end_of_turn_text=Llm(CLEAR_ABOVE / 10))
    events = driver.append(tone(3200)) + driver.append(quiet(700))
    assert not stopped(events), "not at the first question: a decode that dropped a word reads as whole too"
    events = driver.append(quiet(600))
    assert 750 <= pause_before_stop(events, 3200) < 850  # 1.5 x the word rule's 500 ms, not 2.5 x


def test_a_clearly_whole_message_ends_a_turn_smart_turn_doubts_sooner_but_not_at_the_first_question() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.01), end_of_turn_text=Llm(CLEAR_ABOVE))
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert MEDIUM.check_pause_ms + 64 < pause_before_stop(events, 3200)
    assert 200 <= pause_before_stop(events, 3200) < 300  # 0.4 x the word rule's 500 ms


def test_without_the_llms_word_a_doubted_turn_waits_the_doubted_pause() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.01), end_of_turn_text=None)
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert not stopped(events)
    events = driver.append(quiet(600))
    assert 1250 <= pause_before_stop(events, 3200) < 1350  # 2.5 x the word rule's 500 ms


def test_both_agreeing_end_the_turn_at_the_first_question() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99), end_of_turn_text=Llm(WHOLE))
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert MEDIUM.check_pause_ms <= pause_before_stop(events, 3200) <= MEDIUM.check_pause_ms + 64


def test_smart_turns_complete_waits_for_the_llms_answer_in_flight() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99), end_of_turn_text=Llm(WHOLE), hold_words=True)
    events = driver.append(tone(3200)) + driver.append(quiet(250))
    assert not stopped(events)
    [question] = driver.word_questions
    assert question.words == "hello world this is a test"
    driver.answer_words()
    events = driver.pump()
    assert stopped(events)
    assert 250 - 64 <= pause_before_stop(events, 3200) <= 250, "the turn ends where the audio has got to"


def test_a_complete_waits_for_the_llm_only_until_the_pause_reaches_its_bound() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99), end_of_turn_text=Llm(FRAGMENT), hold_words=True)
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert stopped(events), "an answer that has not come by then does not hold the turn"
    assert WAIT_PAUSE_MS <= pause_before_stop(events, 3200) <= WAIT_PAUSE_MS + 64
    assert [q.words for q in driver.word_questions] == ["hello world this is a test"]


def test_words_that_trail_off_are_not_asked_about() -> None:
    llm = Llm(WHOLE)
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99), end_of_turn_text=llm)
    events = driver.append(tone(1600)) + driver.append(quiet(1000))  # "hello world this"
    assert not stopped(events)
    assert llm.asked == []


def test_a_server_without_the_signal_decides_as_before_and_is_not_asked_again() -> None:
    driver = semantic("medium", end_of_turn=FixedEndOfTurn(0.99))  # the LLM's questions fail: unavailable
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert MEDIUM.check_pause_ms <= pause_before_stop(events, 3200) <= MEDIUM.check_pause_ms + 64
    driver.hold_words = True
    driver.append(tone(2000) * 0.9)
    driver.append(quiet(1000))
    assert driver.word_questions == []


def test_the_answers_are_kept_by_words_and_a_failed_question_leaves_the_signal_absent() -> None:
    text = WordsEndOfTurn(Ids(deterministic=True))
    [first] = text.ask("item_1", "please remind me to call", 0)
    assert text.ask("item_1", "please remind me to call", 0) == []  # in flight
    assert text.signal("please remind me to call") is TextSignal.PENDING
    assert text.signal("other words") is TextSignal.ABSENT  # never asked
    assert text.owns(first.job_id)
    text.on_result(TurnEndPredicted(first.job_id, FRAGMENT))
    assert not text.owns(first.job_id)
    assert text.signal("please remind me to call") is TextSignal.GOES_ON
    assert text.ask("item_2", "please remind me to call", 0) == []  # the words' answer holds in any turn
    [second] = text.ask("item_2", "the capital of france", 0)
    text.on_result(JobFailed(second.job_id, "generation_failed", "boom"))
    assert text.signal("the capital of france") is TextSignal.ABSENT
    assert not text.unavailable
    questions = [q for n in range(KEPT_WORDS) for q in text.ask("item_3", f"words {n}", 0)]
    for question in questions:
        text.on_result(TurnEndPredicted(question.job_id, WHOLE))
    assert text.signal("words 0") is TextSignal.ENDS
    assert text.signal("please remind me to call") is TextSignal.ABSENT  # the oldest answers go


def test_a_question_is_held_for_an_answers_first_clause_only_while_its_veto_would_still_come_in_time() -> None:
    text = WordsEndOfTurn(Ids(deterministic=True))
    [early] = text.ask("item_1", "the capital of france", 64)
    [late] = text.ask("item_1", "the capital of spain", WAIT_PAUSE_MS - ANSWER_MS - 30)
    [too_late] = text.ask("item_1", "the capital of italy", WAIT_PAUSE_MS)
    assert early.hold_ms == MAX_HOLD_MS
    assert late.hold_ms == 30
    assert too_late.hold_ms == 0


def test_unavailable_stops_the_questions() -> None:
    text = WordsEndOfTurn(Ids(deterministic=True))
    [question] = text.ask("item_1", "hello", 0)
    assert isinstance(question, ScoreTurnWords)
    text.on_result(JobFailed(question.job_id, END_OF_TURN_TEXT_UNAVAILABLE, "remote LLM"))
    assert text.unavailable
    assert text.ask("item_1", "other words", 0) == []
    assert text.signal("hello") is TextSignal.ABSENT
