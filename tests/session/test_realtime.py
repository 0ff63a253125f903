"""The realtime (voice assistant) session, driven with scripted inputs and fake engines."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import quiet, tone
from tests.session.driver import RealtimeDriver


def make(context_tokens: int = 4096, **kwargs: Any) -> tuple[RealtimeSession, RealtimeDriver]:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: m == "whisper-1")
    session = RealtimeSession(
        RealtimeInfo(base=base, model="gpt-realtime", context_tokens=context_tokens, instructions="Be brief."),
        vad=EnergyVad(),
        ids=Ids(deterministic=True),
    )
    driver = RealtimeDriver(session, **kwargs)
    driver.pump()
    return session, driver


def _server_vad(driver: RealtimeDriver, silence_ms: int = 500) -> None:
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": silence_ms}}},
            },
        }
    )


def _paused() -> tuple[RealtimeDriver, Any, list[dict]]:
    """A server_vad session after 2.2 s of speech and a 200 ms pause (shorter than the 500 ms that
    ends the turn): the answer has begun, and its first clause's synthesis is held. Returns the
    driver, that Synthesize command and the pause's events."""
    _, driver = make(hold_tts=True)
    _server_vad(driver)
    driver.append(tone(2200))
    events = driver.append(quiet(200))
    [early] = driver.held_tts
    return driver, early, events


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def say(driver: RealtimeDriver, text: str = "Hi") -> list[dict]:
    return driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        }
    )


ITEM_EVENTS = ("conversation.item.added", "conversation.item.done")
RESPONSE_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


def test_session_created() -> None:
    session, _ = make()
    created = session.effective_session()
    assert created["type"] == "realtime"
    assert created["object"] == "realtime.session"
    assert created["model"] == "gpt-realtime"
    assert created["expires_at"] == 4_600
    assert created["instructions"] == "Be brief."
    assert created["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",
        "speed": 1.0,
    }
    assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"


def test_text_turn_answered_with_speech_in_the_reference_order() -> None:
    _, driver = make()
    added = say(driver, "What is the capital of France?")
    assert types(added) == ["conversation.item.added", "conversation.item.done"]
    assert added[0]["previous_item_id"] is None
    events = driver.send({"type": "response.create"})
    kinds = types(events)
    assert kinds[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert kinds[-7:] == RESPONSE_TAIL
    middle = kinds[4:-7]
    assert set(middle) == {"response.output_audio_transcript.delta", "response.output_audio.delta"}
    assert middle[0] == "response.output_audio_transcript.delta"  # words go out right before their audio
    created, done = events[0]["response"], events[-2]["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    assert created["usage"] is None
    assert done["status"] == "completed"
    assert done["conversation_id"] == created["conversation_id"]
    transcript = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert transcript == "Hello there. How can I help you today?"
    [item] = done["output"]
    assert item["content"] == [{"type": "output_audio", "transcript": transcript}]
    assert item["status"] == "completed"
    assert item["role"] == "assistant"
    assert events[2]["previous_item_id"] == added[0]["item"]["id"]
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"]
    # The LLM saw the system prompt and the user's words.
    request = driver.chat.requests[-1]
    assert request.messages[0] == {"role": "system", "content": "Be brief."}
    assert request.messages[-1] == {"role": "user", "content": "What is the capital of France?"}


def test_first_audio_is_sent_before_the_answer_is_complete() -> None:
    _, driver = make(hold_tts=True)
    say(driver)
    driver.send({"type": "response.create"})
    # The LLM finished, but speech is produced clause by clause: only the first clause is in TTS.
    assert [c.text for c in driver.held_tts] == ["Hello there."]


def test_each_clause_says_where_it_starts_in_its_answers_speech() -> None:
    """So the runtime can synthesize later clauses just ahead of the listener (runtime/pacing.py)."""
    _, driver = make(hold_tts=True)
    say(driver)
    driver.send({"type": "response.create"})
    first = driver.held_tts.pop()
    created = next(e for e in driver.events if e["type"] == "response.created")
    assert (first.stream, first.at_ms) == (created["response"]["id"], 0)
    driver.run_tts(first)
    driver.pump()
    second = driver.held_tts.pop()
    heard = sum(
        len(base64.b64decode(e["delta"])) // 2 for e in driver.events if e["type"] == "response.output_audio.delta"
    )
    assert second.stream == first.stream
    assert second.at_ms == heard * 1000 // 24_000 > 0  # the first clause's audio, in ms


def test_the_sessions_output_speed_reaches_the_voice() -> None:
    """``audio.output.speed`` was accepted and echoed, and every answer spoke at 1.0 (issue 12)."""
    _, driver = make(hold_tts=True)
    driver.send({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"speed": 1.5}}}})
    say(driver)
    driver.send({"type": "response.create"})
    assert [c.speed for c in driver.held_tts] == [1.5]


def test_max_output_tokens_is_reported_as_asked_and_the_servers_cap_applies_to_inf() -> None:
    _, driver = make()
    say(driver)
    for asked, llm_limit in (("inf", 256), (40, 40)):
        driver.send({"type": "response.create", "response": {"max_output_tokens": asked}})
        done = [e for e in driver.events if e["type"] == "response.done"][-1]
        assert done["response"]["max_output_tokens"] == asked  # "inf" came back as 256
        assert driver.chat.requests[-1].max_tokens == llm_limit


def test_a_clause_spoken_in_one_piece_goes_out_in_deltas_of_at_most_200_ms() -> None:
    """piper yields a whole sentence at once; OpenAI streams deltas of a few hundred milliseconds."""
    from openrealtime.engines.fake import ToneSynthesizer

    class WholeSentences(ToneSynthesizer):
        def synthesize(self, text: str, *, voice: str, stop: Any, speed: float = 1.0) -> Any:
            yield np.concatenate(list(super().synthesize(text, voice=voice, stop=stop, speed=speed)))

    _, driver = make(tts=WholeSentences())
    say(driver)
    events = driver.send({"type": "response.create"})
    deltas = [len(base64.b64decode(e["delta"])) // 2 for e in events if e["type"] == "response.output_audio.delta"]
    assert len(deltas) > 2
    assert max(deltas) <= 24_000 // 5
    done = next(e for e in events if e["type"] == "response.done")
    heard_ms = sum(deltas) * 1000 // 24_000
    assert heard_ms > 1000  # all of it, in pieces
    assert done["response"]["status"] == "completed"


def test_a_spoken_turn_is_retrieved_with_its_audio_and_only_recent_turns_keep_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``conversation.item.retrieve`` returns the turn's audio, as OpenAI does (in the input format),
    for the last ``RETRIEVABLE_AUDIO_S`` of spoken turns; the added/done events never carry it."""
    from openrealtime.session import items

    monkeypatch.setattr(items, "RETRIEVABLE_AUDIO_S", 4)
    _, driver = make()
    _server_vad(driver)
    turns = []
    for _ in range(2):
        events = driver.append(tone(2200)) + driver.append(quiet(800))
        committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        added = next(e for e in events if e["type"] == "conversation.item.added" and e["item"]["role"] == "user")
        assert "audio" not in added["item"]["content"][0]
        turns.append(committed["item_id"])
    retrieved = [driver.send({"type": "conversation.item.retrieve", "item_id": item_id})[0] for item_id in turns]
    assert "audio" not in retrieved[0]["item"]["content"][0]  # past the last 4 s of spoken turns
    audio = base64.b64decode(retrieved[1]["item"]["content"][0]["audio"])
    seconds = len(audio) / 2 / 24_000  # PCM16 at the session's input rate
    assert 2.2 <= seconds <= 4.0  # the turn: its speech and the silence around it


IMAGE = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}


def test_an_image_is_refused_unless_the_model_sees_images() -> None:
    """It used to reach the model as the text "[image]"; now a clear error, or the image itself."""
    _, driver = make()
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is this?"}, IMAGE]}
    [error] = driver.send({"type": "conversation.item.create", "item": item})
    assert error["error"]["code"] == "image_input_not_supported"
    assert "--llm-vision" in error["error"]["message"]
    [error] = driver.send({"type": "response.create", "response": {"conversation": "none", "input": [item]}})
    assert (error["error"]["code"], error["error"]["param"]) == ("image_input_not_supported", "response.input")
    assert not driver.chat.requests

    base = SessionInfo(session_id="sess_2", created_at_s=1_000, accepts_model=lambda m: True)
    info = RealtimeInfo(base=base, model="gpt-realtime", sees_images=True)
    driver = RealtimeDriver(RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True)))
    driver.pump()
    driver.send({"type": "conversation.item.create", "item": item})
    driver.send({"type": "response.create"})
    [message] = [m for m in driver.chat.requests[-1].messages if m["role"] == "user"]
    assert message["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE["image_url"], "detail": "auto"}},
    ]


def test_vad_turn_creates_a_response_after_the_user_item() -> None:
    _, driver = make()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                    }
                },
            },
        }
    )
    events = driver.append(quiet(300)) + driver.append(tone(2200)) + driver.append(quiet(600))
    kinds = types(events)
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    positions = [kinds.index(k) for k in order]
    assert positions == sorted(positions)
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    assert completed[0]["transcript"] == "hello world this is"
    assert driver.chat.requests[-1].messages[-1] == {"role": "user", "content": "hello world this is"}
    assert kinds[-2:] == ["response.done", "rate_limits.updated"]


def test_no_transcription_events_unless_configured_but_the_llm_still_hears() -> None:
    _, driver = make()
    events = driver.append(tone(2200)) + driver.append(quiet(800))
    assert not [e for e in events if "input_audio_transcription" in e["type"]]
    assert driver.chat.requests[-1].messages[-1]["content"] == "hello world this is"


def test_barge_in_cancels_in_the_same_step_and_drops_late_audio() -> None:
    session, driver = make(hold_tts=True)
    say(driver)
    driver.send({"type": "response.create"})
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=3)  # 300 ms of the answer have been sent
    events = driver.pump()
    assert types(events) == ["response.output_audio_transcript.delta"] + ["response.output_audio.delta"] * 3
    barge = driver.append(tone(300))
    kinds = types(barge)
    assert kinds[0] == "input_audio_buffer.speech_started"
    assert kinds[1:] == RESPONSE_TAIL
    done = barge[-2]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["output"][0]["status"] == "incomplete"
    assert clause.job_id in driver.cancelled
    # Audio that the TTS still produces for the cancelled response never reaches the client.
    driver.run_tts(clause)
    assert driver.pump() == []
    assert session.active_response is None


def test_truncate_cuts_what_the_model_remembers_to_what_was_heard() -> None:
    session, driver = make()
    say(driver)
    events = driver.send({"type": "response.create"})
    item_id = events[1]["item"]["id"]
    audio_ms = session.conversation.get(item_id).audio_ms  # type: ignore[union-attr]
    assert audio_ms > 1500
    # "Hello there." is 12 chars at 60 ms each = 720 ms; the listener heard 1000 ms.
    [truncated] = driver.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 1000}
    )
    assert truncated == {
        "type": "conversation.item.truncated",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 1000,
    }
    say(driver, "And then?")
    driver.send({"type": "response.create"})
    messages = driver.chat.requests[-1].messages
    assert messages[-2]["role"] == "assistant"
    heard = messages[-2]["content"]
    assert heard.startswith("Hello there.")
    assert "today" not in heard
    [error] = driver.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 999_999,
            "event_id": "t1",
        }
    )
    assert error["error"]["message"] == "Audio content of 1000ms is already shorter than 999999ms"
    assert error["error"]["event_id"] == "t1"


@pytest.mark.parametrize(
    ("target", "code"),
    [("item_nope", "item_truncate_invalid_item_id"), ("user", "unsupported_content_type")],
)
def test_truncate_errors(target: str, code: str) -> None:
    _, driver = make()
    added = say(driver)
    item_id = added[0]["item"]["id"] if target == "user" else target
    [error] = driver.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 0}
    )
    assert error["error"]["code"] == code


def test_cancel_and_the_one_active_response_rule() -> None:
    _, driver = make(hold_llm=True)
    say(driver)
    driver.send({"type": "response.create"})
    [error] = driver.send({"type": "response.create", "event_id": "r2"})
    assert error["error"]["code"] == "conversation_already_has_active_response"
    events = driver.send({"type": "response.cancel"})
    assert types(events) == ["response.done", "rate_limits.updated"]
    assert events[0]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    [error] = driver.send({"type": "response.cancel", "event_id": "c2"})
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found",
        "param": None,
        "event_id": "c2",
    }


def test_function_call_round_trip() -> None:
    _, driver = make()
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    driver.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "tools": [tool], "tool_choice": "required"},
        }
    )
    say(driver, "Weather in Paris?")
    events = driver.send({"type": "response.create"})
    assert types(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    call = events[4]
    assert call["name"] == "get_weather"
    assert call["arguments"] == "{}"
    assert events[-2]["response"]["output"][0]["type"] == "function_call"
    added = driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temp_c": 18}'},
        }
    )
    assert added[0]["previous_item_id"] == call["item_id"]
    driver.send({"type": "session.update", "session": {"type": "realtime", "tool_choice": "auto"}})
    driver.send({"type": "response.create"})
    messages = driver.chat.requests[-1].messages
    assert messages[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{}"}
    assert messages[-1] == {"role": "tool", "tool_call_id": call["call_id"], "content": '{"temp_c": 18}'}


def test_out_of_band_response_stays_out_of_the_conversation() -> None:
    session, driver = make()
    say(driver, "I want to buy a car.")
    before = len(session.conversation)
    events = driver.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"topic": "classification"},
                "output_modalities": ["text"],
                "instructions": "Classify.",
                "input": [{"type": "item_reference", "id": session.conversation.last_id}],
            },
        }
    )
    assert "conversation.item.added" not in types(events)
    done = events[-2]["response"]
    assert done["conversation_id"] is None
    assert done["metadata"] == {"topic": "classification"}
    assert "response.output_text.delta" in types(events)
    assert len(session.conversation) == before
    assert driver.chat.requests[-1].messages == [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "I want to buy a car."},
    ]


def test_llm_failure_fails_the_response_and_the_session_goes_on() -> None:
    class Broken(FakeChatModel):
        def chat(self, request, stop):  # type: ignore[no-untyped-def]
            raise RuntimeError("no")

    session, driver = make(hold_llm=True)
    say(driver)
    driver.send({"type": "response.create"})
    [generate] = driver.held_llm
    from openrealtime.session.commands import JobFailed

    session.on_result(JobFailed(generate.job_id, "engine_error", "llm crashed"))
    events = driver.pump()
    assert events[0]["response"]["status"] == "failed"
    assert events[0]["response"]["status_details"]["error"]["code"] == "engine_error"
    driver.hold_llm = False
    assert types(driver.send({"type": "response.create"}))[-2] == "response.done"


def test_truncation_auto_drops_the_oldest_turns() -> None:
    _, driver = make(context_tokens=300)
    for i in range(30):
        say(driver, f"message number {i} " + "padding " * 10)
    driver.send({"type": "response.create"})
    messages = driver.chat.requests[-1].messages
    assert messages[0]["role"] == "system"
    assert "message number 29" in messages[-1]["content"]
    assert not any("message number 0 " in str(m["content"]) for m in messages)


def test_item_create_positions_and_errors() -> None:
    _, driver = make()
    first = say(driver, "one")[0]["item"]["id"]
    root = driver.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "zero"}],
            },
        }
    )
    assert root[0]["previous_item_id"] is None
    [error] = driver.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "nope",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        }
    )
    assert error["error"]["param"] == "previous_item_id"
    [retrieved] = driver.send({"type": "conversation.item.retrieve", "item_id": first})
    assert retrieved["item"]["content"] == [{"type": "input_text", "text": "one"}]
    assert driver.send({"type": "conversation.item.delete", "item_id": first}) == [
        {"type": "conversation.item.deleted", "item_id": first}
    ]
    [error] = driver.send({"type": "conversation.item.delete", "item_id": first})
    assert error["error"]["code"] == "item_delete_invalid_item_id"
    [error] = driver.send({"type": "conversation.item.retrieve", "item_id": first})
    assert error["error"]["code"] == "item_retrieve_invalid_item_id"


def test_g711_output() -> None:
    _, driver = make()
    driver.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}},
        }
    )
    say(driver)
    events = driver.send({"type": "response.create"})

    audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    # Two clauses of 12 + 25 characters at 60 ms each = 2.22 s of tone = 17 760 one-byte samples at 8 kHz.
    assert abs(len(audio) - 17_760) < 100


def test_semantic_vad_waits_longer_for_an_unfinished_sentence() -> None:
    def pause_before_commit(speech_ms: int) -> int:
        _, driver = make()
        driver.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "turn_detection": {
                                "type": "semantic_vad",
                                "eagerness": "medium",
                                "create_response": False,
                            }
                        }
                    },
                },
            }
        )
        events = driver.append(tone(speech_ms)) + driver.append(quiet(5000))
        stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
        return int(stopped["audio_end_ms"]) - speech_ms

    finished = pause_before_commit(3200)  # "hello world this is a test": a whole thought
    trailing = pause_before_commit(1600)  # "hello world this": trails off
    assert finished < 900
    assert trailing >= 3900  # waits up to the medium cap of 4 s


def test_voice_cannot_change_after_audio() -> None:
    _, driver = make()
    say(driver)
    driver.send({"type": "response.create"})
    [error] = driver.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}}}
    )
    assert error["error"]["code"] == "cannot_update_voice"


def test_idle_timeout_commits_silence_and_prompts_a_response() -> None:
    _, driver = make()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}},
            },
        }
    )
    say(driver)
    done = driver.send({"type": "response.create"})
    answer_ms = 2220  # the fake answer's audio, which the listener hears before the countdown starts
    assert done[-2]["response"]["status"] == "completed"
    assert not [e for e in driver.append(quiet(answer_ms + 4800)) if e["type"].endswith("timeout_triggered")]
    events = driver.append(quiet(400))
    kinds = types(events)
    assert kinds[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert "response.created" in kinds
    # Speech during the countdown stops it.
    _, driver = make()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000, "create_response": False}
                    }
                },
            },
        }
    )
    say(driver)
    driver.send({"type": "response.create"})
    events = driver.append(quiet(3000)) + driver.append(tone(500)) + driver.append(quiet(8000))
    assert "input_audio_buffer.timeout_triggered" not in types(events)


def test_truncating_an_item_still_being_spoken_stops_its_response() -> None:
    session, driver = make(hold_tts=True)
    say(driver)
    driver.send({"type": "response.create"})
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=4)  # 400 ms of "Hello there." sent, the answer goes on
    events = driver.pump()
    item_id = events[0]["item_id"]
    events = driver.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 300}
    )
    kinds = types(events)
    assert kinds[-1] == "conversation.item.truncated"
    assert kinds[:-1] == RESPONSE_TAIL
    assert events[-3]["response"]["status"] == "cancelled"
    entry = session.conversation.get(item_id)
    assert entry is not None
    assert entry.audio_ms == 300
    assert entry.heard_text == "Hello"  # 300 of the clause's 400 ms sent so far: 1 of its 2 words


def test_the_answer_starts_in_the_pause_and_is_dropped_if_the_speaker_goes_on() -> None:
    from openrealtime.session.commands import Generate

    _, driver = make(hold_llm=True)
    _server_vad(driver)
    driver.append(tone(2200))
    events = driver.append(quiet(200))  # a pause, shorter than the 500 ms that ends the turn
    assert "input_audio_buffer.speech_stopped" not in types(events)
    [early] = driver.held_llm
    assert isinstance(early, Generate)
    assert early.request.messages[-1] == {"role": "user", "content": "hello world this is"}
    assert not [e for e in events if e["type"].startswith("response.")], "nothing is said before the turn ends"
    driver.append(tone(1000))  # the speaker goes on: the early answer is cancelled
    assert early.job_id in driver.cancelled
    # The turn then ends; its answer is generated from the whole turn and reaches the client normally.
    driver.held_llm.clear()
    driver.append(quiet(250))
    [again] = driver.held_llm
    assert again.request.messages[-1]["content"] == "hello world this is a test"
    events = driver.append(quiet(400))
    assert "response.created" in types(events)
    driver.run_llm(again)
    driver.hold_llm = False
    events = driver.pump()
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert events[-2]["response"]["status"] == "completed"


def test_the_first_clause_is_spoken_in_the_pause_and_sent_at_the_commit() -> None:
    from openrealtime.session.commands import Synthesize

    driver, early, events = _paused()  # the pause: answer generated, its first clause synthesized
    assert not [e for e in events if e["type"].startswith("response.")]
    assert isinstance(early, Synthesize)
    assert early.text == "Hello there."
    driver.run_tts(early)  # its audio is ready before the turn has ended ...
    driver.held_tts.clear()
    assert not [e for e in driver.pump() if e["type"].startswith("response.")]
    events = driver.append(quiet(400))  # ... and goes out in the same step as response.created
    kinds = types(events)
    created = kinds.index("response.created")
    assert kinds[created:].count("response.output_audio.delta") >= 1
    assert kinds.index("response.output_audio_transcript.delta") < kinds.index("response.output_audio.delta")
    [second] = driver.held_tts  # the next clause starts at once; the first is not synthesized again
    assert second.text == "How can I help you today?"
    driver.run_tts(second)
    events = driver.pump()
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"][0]["transcript"] == "Hello there. How can I help you today?"
    audio = [e for e in driver.events if e["type"] == "response.output_audio.delta"]
    # 12 + 25 characters of tone at 60 ms each, all of it sent once: 2.22 s at 24 kHz, 2 bytes a sample.
    assert abs(sum(len(base64.b64decode(e["delta"])) for e in audio) - 2 * 53_280) < 2_000


def test_the_early_first_clause_is_cancelled_with_the_answer_when_the_speaker_goes_on() -> None:
    driver, early, _ = _paused()
    driver.append(tone(1000))
    assert early.job_id in driver.cancelled
    assert not driver.held_tts


def test_the_early_first_clause_may_still_be_in_progress_at_the_commit() -> None:
    driver, early, _ = _paused()
    events = driver.append(quiet(400))
    assert "response.created" in types(events)
    assert "response.output_audio.delta" not in types(events)
    assert driver.held_tts == [early]
    assert early.job_id not in driver.cancelled
    driver.held_tts.clear()
    driver.run_tts(early)
    events = driver.pump()
    assert types(events).count("response.output_audio_transcript.delta") == 1
    [second] = driver.held_tts
    assert second.text == "How can I help you today?"


def test_a_session_update_in_the_pause_drops_the_early_answer() -> None:
    driver, early, _ = _paused()
    driver.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Answer in French."}})
    assert early.job_id in driver.cancelled
    driver.held_tts.clear()
    driver.append(quiet(400))  # the turn ends: the answer is generated again, with the new instructions
    assert driver.chat.requests[-1].messages[0]["content"] == "Answer in French."
    [fresh] = driver.held_tts
    assert fresh.text == "Hello there."
    assert fresh.job_id != early.job_id


def test_events_are_snapshots_whatever_the_speed_of_the_transcript() -> None:
    """With a 500 ms end-of-turn pause the user's transcript is decoded in the pause and known at the
    commit; with 50 ms it arrives after it. Either way the user item goes out as it was at the commit,
    ``"transcript": null`` as OpenAI sends it (reference 6.2), and the text follows in its own event."""

    def turn(silence_ms: int) -> list[dict]:
        _, driver = make()
        _server_vad(driver, silence_ms)
        driver.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
            }
        )
        driver.append(tone(1200))
        driver.append(quiet(700))
        return [e for e in driver.events if e["type"] != "session.updated"]

    early, late = turn(500), turn(50)
    user_items = [
        [e for e in events if e["type"] in ITEM_EVENTS and e["item"].get("role") == "user"] for events in (early, late)
    ]
    assert user_items[0] == user_items[1]
    assert [e["item"]["content"] for e in user_items[0]] == [[{"type": "input_audio", "transcript": None}]] * 2
    completed = [
        [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
        for events in (early, late)
    ]
    assert completed[0] == completed[1]
    assert completed[0][0]["transcript"]


def _pcm_b64(samples: Any) -> str:
    from openrealtime.audio.codec import float_to_pcm16

    return base64.b64encode(float_to_pcm16(samples)).decode()


def test_an_audio_item_a_client_creates_is_transcribed_and_the_model_hears_it() -> None:
    session, driver = make()
    part = {"type": "input_audio", "audio": _pcm_b64(tone(1500))}
    events = driver.send(
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [part]}}
    )
    assert types(events) == ["conversation.item.added", "conversation.item.done"]
    assert events[0]["item"]["content"][0]["transcript"] is None  # the snapshot of the moment it was added
    item_id = events[0]["item"]["id"]
    retrieved = driver.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved[0]["item"]["content"][0]["transcript"] == "hello world"
    driver.send({"type": "response.create"})
    assert driver.chat.requests[-1].messages[-1] == {"role": "user", "content": "hello world"}
    entry = session.conversation.get(item_id)
    assert entry is not None
    assert not entry.transcript_pending


def test_an_audio_item_whose_transcription_fails_leaves_the_model_without_it() -> None:
    from openrealtime.engines.fake import FakeTranscriber

    _, driver = make()
    driver.asr = FakeTranscriber(fail_on_seconds=0.5)
    part = {"type": "input_audio", "audio": _pcm_b64(tone(1500))}
    driver.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [part]}})
    events = driver.send({"type": "response.create"})  # not held back by a transcript that never comes
    assert types(events)[-2] == "response.done"
    assert [m["role"] for m in driver.chat.requests[-1].messages] == ["system"]


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (
            {"type": "output_audio", "transcript": "hi"},
            "Assistant audio messages cannot be created; use 'output_text'.",
        ),
        ({"type": "input_text", "text": "hi"}, "Assistant messages take 'output_text' content."),
    ],
)
def test_assistant_items_take_output_text_only(part: dict, message: str) -> None:
    _, driver = make()
    item = {"type": "message", "role": "assistant", "content": [part]}
    [error] = driver.send({"type": "conversation.item.create", "event_id": "c1", "item": item})
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": message,
        "param": "item.content",
        "event_id": "c1",
    }


def test_manual_turns_in_a_voice_session_commit_and_clear() -> None:
    session, driver = make()
    driver.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    )
    driver.append(tone(600))
    events = driver.send({"type": "input_audio_buffer.commit"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]  # no turn detection: no response of its own
    assert events[0]["previous_item_id"] is None
    driver.append(tone(300))
    assert types(driver.send({"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    [error] = driver.send({"type": "input_audio_buffer.commit"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert session.conversation.get(events[0]["item_id"]) is not None


def test_a_realtime_session_refuses_a_transcription_update_and_keeps_its_config() -> None:
    session, driver = make()
    before = session.effective_session()
    [error] = driver.send({"type": "session.update", "event_id": "u1", "session": {"type": "transcription"}})
    assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "session.type")
    assert session.effective_session() == before


def test_a_response_the_client_creates_in_the_pause_wins_over_the_early_answer() -> None:
    driver, early, _ = _paused()
    created = driver.send({"type": "response.create"})
    assert types(created)[0] == "response.created"
    driver.held_tts.clear()
    events = driver.append(quiet(400))  # the turn ends while the client's response is active
    assert "input_audio_buffer.committed" in types(events)
    assert "response.created" not in types(events)  # no second response, and the early one is dropped
    assert early.job_id in driver.cancelled


def test_an_early_answer_that_fails_is_made_again_at_the_commit() -> None:
    from openrealtime.session.commands import JobFailed

    session, driver = make(hold_llm=True)
    _server_vad(driver)
    driver.append(tone(2200))
    driver.append(quiet(200))
    [early] = driver.held_llm
    session.on_result(JobFailed(early.job_id, "engine_error", "llm crashed"))
    assert not [e for e in driver.pump() if e["type"].startswith("response.")]  # nothing on the wire
    driver.held_llm.clear()
    driver.append(quiet(400))
    [again] = driver.held_llm
    assert again.job_id != early.job_id
    driver.hold_llm = False
    driver.run_llm(again)
    assert types(driver.pump())[-2] == "response.done"


def test_an_early_first_clause_that_fails_is_spoken_again_after_the_commit() -> None:
    from openrealtime.session.commands import JobFailed

    driver, early, _ = _paused()
    driver.session.on_result(JobFailed(early.job_id, "tts_failed", "voice crashed"))
    driver.held_tts.clear()
    assert not driver.pump()
    driver.append(quiet(400))
    first = driver.held_tts[0]
    assert first.text == "Hello there."
    assert first.job_id != early.job_id


def test_a_long_answer_cut_by_the_token_cap_is_incomplete() -> None:
    from openrealtime.contracts import ChatDone, TextDelta

    class Capped(FakeChatModel):
        def chat(self, request, stop):  # type: ignore[no-untyped-def]
            yield TextDelta("")  # an empty delta changes nothing
            yield TextDelta("Well")
            yield ChatDone(finish_reason="length", input_tokens=3, output_tokens=1)

    _, driver = make(chat=Capped())
    say(driver)
    events = driver.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    done = events[-2]["response"]
    assert (done["status"], done["status_details"]) == (
        "incomplete",
        {"type": "incomplete", "reason": "max_output_tokens"},
    )
    assert done["output"][0]["status"] == "incomplete"
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Well"]


def test_an_out_of_band_tool_call_is_not_added_to_the_conversation() -> None:
    session, driver = make()
    tool = {"type": "function", "name": "lookup", "description": "", "parameters": {"type": "object"}}
    say(driver)
    before = len(session.conversation)
    events = driver.send(
        {"type": "response.create", "response": {"conversation": "none", "tools": [tool], "tool_choice": "required"}}
    )
    assert "conversation.item.added" not in types(events)
    assert "conversation.item.done" not in types(events)
    assert types(events)[-4:-2] == ["response.function_call_arguments.done", "response.output_item.done"]
    assert len(session.conversation) == before


def test_a_clause_whose_voice_gives_no_audio_still_has_its_words_sent() -> None:
    class Mute:
        sample_rate_hz = 24_000

        def synthesize(self, text, *, voice, stop, speed=1.0):  # type: ignore[no-untyped-def]
            return iter(())

    _, driver = make(tts=Mute())
    say(driver)
    events = driver.send({"type": "response.create"})
    assert "response.output_audio.delta" not in types(events)
    deltas = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
    assert deltas == ["Hello there.", " How can I help you today?"]
    assert events[-2]["response"]["status"] == "completed"
