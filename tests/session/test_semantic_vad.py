"""semantic_vad with an end-of-turn model: when it asks, what it hears, what its answers do.

The model is a fake (:class:`~openrealtime.engines.fake.FixedEndOfTurn`) or held questions answered
by hand; speech is a tone the energy VAD hears (its pause is seen 32 ms after the tone stops), and
the fake transcriber hears two words of "hello world this is a test ..." a second: 3.2 s is a
finished thought, 1.6 s ("hello world this") trails off.
"""

from __future__ import annotations

from typing import Any

import pytest

from openrealtime.engines.fake import EnergyVad, FixedEndOfTurn
from openrealtime.session.commands import TurnEndPredicted
from openrealtime.session.endpointing import END_OF_TURN
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import quiet, tone
from tests.session.driver import Driver, RealtimeDriver

ENGINE_RATE_HZ = 16_000


def semantic(eagerness: str = "medium", **driver_options: Any) -> RealtimeDriver:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    session = RealtimeSession(
        RealtimeInfo(base=base, model="gpt-realtime", context_tokens=4096, instructions="Be brief."),
        vad=EnergyVad(),
        ids=Ids(deterministic=True),
    )
    driver = RealtimeDriver(session, **driver_options)
    driver.pump()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {"type": "semantic_vad", "eagerness": eagerness, "create_response": False}
                    }
                },
            },
        }
    )
    return driver


def pause_before_stop(events: list[dict[str, Any]], speech_ms: int) -> int:
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    return int(stopped["audio_end_ms"]) - speech_ms


@pytest.mark.parametrize("eagerness", ["low", "medium", "high", "auto"])
def test_a_complete_turn_ends_at_the_first_question(eagerness: str) -> None:
    model = FixedEndOfTurn(0.99)
    driver = semantic(eagerness, end_of_turn=model)
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    policy = END_OF_TURN[eagerness]
    pause = pause_before_stop(events, 3200)
    # Asked once the pause (seen one 32 ms frame late) reached check_pause_ms; answered at once.
    assert policy.check_pause_ms <= pause <= policy.check_pause_ms + 32 + 32
    assert len(model.heard_samples) == 1
    kinds = [e["type"] for e in events]
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("input_audio_buffer.committed")


def test_an_incomplete_turn_is_asked_again_then_ends_at_the_maximum_wait() -> None:
    model = FixedEndOfTurn(0.01)
    driver = semantic("medium", end_of_turn=model)
    events = driver.append(tone(1600)) + driver.append(quiet(5000))  # "hello world this"
    policy = END_OF_TURN["medium"]
    pause = pause_before_stop(events, 1600)
    assert policy.max_wait_ms <= pause <= policy.max_wait_ms + 100
    # The first question, then one each recheck_ms of the same pause until the maximum wait.
    expected = 1 + (policy.max_wait_ms - policy.check_pause_ms) // policy.recheck_ms
    assert len(model.heard_samples) in (expected, expected + 1)


def test_speech_after_an_incomplete_answer_keeps_the_turn_open() -> None:
    model = FixedEndOfTurn(0.01)
    driver = semantic("medium", end_of_turn=model)
    events = driver.append(tone(2400)) + driver.append(quiet(400)) + driver.append(tone(1000))
    assert "input_audio_buffer.speech_stopped" not in [e["type"] for e in events]
    model.probability = 0.99
    events = driver.append(quiet(600))
    assert pause_before_stop(events, 2400 + 400 + 1000) < 300
    [committed] = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    assert committed["item_id"]


def test_a_question_in_flight_is_cancelled_when_speech_resumes_and_its_late_answer_dropped() -> None:
    driver = semantic("medium", hold_questions=True)
    driver.append(tone(1600))
    driver.append(quiet(300))
    [question] = driver.questions
    events = driver.append(tone(800))
    assert question.job_id in driver.cancelled
    driver.session.on_result(TurnEndPredicted(question.job_id, 0.99))  # late: void by id
    events += driver.pump()
    assert "input_audio_buffer.speech_stopped" not in [e["type"] for e in events]


def test_a_complete_answer_ends_the_turn_where_the_audio_has_got_to() -> None:
    driver = semantic("medium", hold_questions=True)
    driver.append(tone(3200))
    driver.append(quiet(300))
    assert len(driver.questions) == 1
    driver.append(quiet(100))  # the answer takes a while; the pause goes on meanwhile
    driver.answer_questions(0.9)
    events = driver.pump()
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert 3550 <= stopped["audio_end_ms"] <= 3600  # 3.2 s of speech, 0.4 s of pause: not where it was asked


def test_the_model_cannot_end_a_turn_whose_words_trail_off() -> None:
    model = FixedEndOfTurn(0.99)
    driver = semantic("medium", end_of_turn=model)
    events = driver.append(tone(1600)) + driver.append(quiet(5000))  # "hello world this"
    assert pause_before_stop(events, 1600) >= END_OF_TURN["medium"].max_wait_ms


def test_an_incomplete_answer_makes_finished_words_wait_longer() -> None:
    model = FixedEndOfTurn(0.3)  # under medium's 0.5
    driver = semantic("medium", end_of_turn=model)
    events = driver.append(tone(3200)) + driver.append(quiet(1000))  # "hello world this is a test"
    assert "input_audio_buffer.speech_stopped" not in [e["type"] for e in events]  # a 1 s pause goes on
    events = driver.append(quiet(600))
    assert 1250 <= pause_before_stop(events, 3200) < 1350  # 2.5 x the word rule's 500 ms


def test_without_an_answer_yet_finished_words_end_the_turn_at_the_word_rules_pause() -> None:
    driver = semantic("medium", hold_questions=True)  # the model has not answered
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert 500 <= pause_before_stop(events, 3200) < 600


def test_the_model_hears_the_last_eight_seconds_with_the_pause() -> None:
    model = FixedEndOfTurn(0.99)
    driver = semantic("medium", end_of_turn=model)
    driver.append(tone(10_000))
    driver.append(quiet(400))
    [heard] = model.heard_samples
    assert heard == 8 * ENGINE_RATE_HZ
    model.heard_samples.clear()
    driver.append(tone(3200))
    driver.append(quiet(400))
    [heard] = model.heard_samples
    # The turn's start includes its prefix padding (300 ms) and ends where the pause was asked about.
    assert 3.5 * ENGINE_RATE_HZ <= heard <= 3.8 * ENGINE_RATE_HZ


def test_without_a_model_the_word_rule_decides() -> None:
    driver = semantic("medium")  # questions fail as on a server without the model
    events = driver.append(tone(3200)) + driver.append(quiet(1000))  # "hello world this is a test"
    assert pause_before_stop(events, 3200) < 900
    driver = semantic("medium")
    events = driver.append(tone(1600)) + driver.append(quiet(5000))  # "hello world this": trails off
    assert pause_before_stop(events, 1600) >= 3900


def test_server_vad_never_asks() -> None:
    model = FixedEndOfTurn(0.99)
    driver = semantic("medium", end_of_turn=model)
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
            },
        }
    )
    events = driver.append(tone(3200)) + driver.append(quiet(1000))
    assert 500 <= pause_before_stop(events, 3200) <= 564
    assert model.heard_samples == []


def test_a_transcription_session_takes_the_answers_too() -> None:
    session = TranscriptionSession(
        SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1"),
        vad=EnergyVad(),
        ids=Ids(deterministic=True),
    )
    model = FixedEndOfTurn(0.99)
    driver = Driver(session, end_of_turn=model)
    driver.pump()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                    }
                },
            },
        }
    )
    events = driver.append(tone(3200)) + driver.append(quiet(600))
    assert pause_before_stop(events, 3200) < 250
    assert "conversation.item.input_audio_transcription.completed" in [e["type"] for e in events]


def test_eagerness_mapping_orders_thresholds_and_waits() -> None:
    low, medium, high = END_OF_TURN["low"], END_OF_TURN["medium"], END_OF_TURN["high"]
    assert END_OF_TURN["auto"] == medium  # as OpenAI: auto is medium
    assert (low.max_wait_ms, medium.max_wait_ms, high.max_wait_ms) == (8_000, 4_000, 2_000)  # OpenAI's caps
    assert low.threshold >= medium.threshold >= high.threshold
    assert low.check_pause_ms >= medium.check_pause_ms >= high.check_pause_ms
    assert low.recheck_ms >= medium.recheck_ms >= high.recheck_ms
    for policy in (low, medium, high):
        assert 0.0 < policy.threshold < 1.0
        # The model hears some of the pause; a complete sentence ends once the pause's words come
        # too (~150-250 ms after the last word).
        assert 64 <= policy.check_pause_ms <= 300
