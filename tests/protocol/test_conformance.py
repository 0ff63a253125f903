"""Our own conformance suite: what we send is what OpenAI's schema allows, what the SDK sends we take.

Every server event of every scenario below (the golden transcripts' and more: text and spoken turns,
barge-in and truncate, tools, out-of-band responses, errors of each kind, transcription and
translation sessions, session echoes, retrieve, rate limits, the input buffer, a WebRTC call's
playback) is held to the official SDK's models strictly (:mod:`tests.protocol.oracle`): no key
OpenAI's schema lacks, no ``null`` where OpenAI leaves the key out. So the next pipecat-style break (a
parser that refuses a field OpenAI never sends) fails here first. The other direction: every client
event the SDK's types can express, with every field it declares, is accepted by our parser.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import typing
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pydantic
import pytest
from openai.types.realtime.client_secret_create_response import ClientSecretCreateResponse
from openai.types.realtime.conversation_item import ConversationItem
from openai.types.realtime.realtime_client_event import RealtimeClientEvent
from openai.types.realtime.realtime_translation_client_event import RealtimeTranslationClientEvent
from openai.types.realtime.realtime_translation_client_secret_create_response import (
    RealtimeTranslationClientSecretCreateResponse,
)
from openai.types.realtime.response_item_reference import ResponseItemReference

from openrealtime import contracts
from openrealtime.audio.codec import float_to_pcm16
from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.engines.fake import FakeChatModel, FakeTranscriber
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, dump_server_event, parse_client_event
from openrealtime.session.commands import JobFailed, PlaybackCleared, PlaybackStarted, PlaybackStopped, PlayedItem
from openrealtime.session.responding import MAX_RESPONSES_IN_FLIGHT
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.protocol import oracle
from tests.session import (
    mcp_fakes,
    test_golden,
    test_realtime,
    test_server_playback,
    test_transcription,
    test_translation,
)

Json = dict[str, Any]
WIRE_EVENT_ID = "event_0123456789abcdefghijk"


def _pcm_b64(samples: np.ndarray) -> str:
    return base64.b64encode(float_to_pcm16(samples)).decode()


def _update(**session: Any) -> Json:
    return {"type": "session.update", "session": {"type": "realtime", **session}}


def _user_text(text: str) -> Json:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# --- scenarios: each returns the server events a session sent, as the client sees them --------------


def text_response() -> list[Json]:
    _, driver = test_realtime.make()
    driver.send(_update(output_modalities=["text"], instructions="Answer in one line."))
    driver.send(_user_text("Hello?"))
    driver.send({"type": "response.create"})
    return driver.events


def spoken_turn_server_vad() -> list[Json]:
    _, driver = test_realtime.make()
    driver.send(
        _update(
            audio={
                "input": {
                    "transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                }
            }
        )
    )
    driver.append(quiet(300))
    driver.append(tone(2200))
    driver.append(quiet(600))
    return driver.events


def barge_in_and_truncate() -> list[Json]:
    _, driver = test_realtime.make(hold_tts=True)
    driver.send(_user_text("Tell me a story."))
    driver.send({"type": "response.create"})
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=3)
    driver.pump()
    item_id = next(e["item"]["id"] for e in driver.events if e["type"] == "response.output_item.added")
    driver.append(tone(300))
    driver.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 200})
    driver.append(quiet(700))
    return driver.events


def tool_call_round_trip() -> list[Json]:
    _, driver = test_realtime.make()
    driver.send(_update(tools=[WEATHER_TOOL], tool_choice="required"))
    driver.send(_user_text("Weather in Paris?"))
    driver.send({"type": "response.create"})
    call = next(e for e in driver.events if e["type"] == "response.function_call_arguments.done")
    driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temp_c": 18}'},
        }
    )
    driver.send(_update(tool_choice="auto"))
    driver.send({"type": "response.create"})
    return driver.events


def out_of_band_responses() -> list[Json]:
    session, driver = test_realtime.make()
    driver.send(_user_text("I want to buy a car."))
    driver.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"topic": "classification"},
                "output_modalities": ["text"],
                "instructions": "Classify the conversation as support or sales.",
                "input": [
                    {"type": "item_reference", "id": session.conversation.last_id},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Classify."}]},
                ],
            },
        }
    )
    driver.send(
        {
            "type": "response.create",
            "response": {"conversation": "none", "tools": [WEATHER_TOOL], "tool_choice": "required"},
        }
    )
    return driver.events


def response_outcomes() -> list[Json]:
    """Cancelled by the client, cut by the token cap (incomplete), failed by the engine."""
    _, driver = test_realtime.make(hold_llm=True)
    driver.send(_user_text("Hi"))
    driver.send({"type": "response.create"})
    driver.send({"type": "response.cancel"})

    from openrealtime.contracts import ChatDone, TextDelta

    class Capped(FakeChatModel):
        def chat(self, request, stop):  # type: ignore[no-untyped-def]
            yield TextDelta("Well")
            yield ChatDone(finish_reason="length", input_tokens=3, output_tokens=1)

    _, capped = test_realtime.make(chat=Capped())
    capped.send(_user_text("Hi"))
    capped.send({"type": "response.create", "response": {"output_modalities": ["text"], "max_output_tokens": 1}})

    session, failing = test_realtime.make(hold_llm=True)
    failing.send(_user_text("Hi"))
    failing.send({"type": "response.create"})
    [generate] = failing.held_llm
    session.on_result(JobFailed(generate.job_id, "engine_error", "llm crashed"))
    failing.pump()
    return driver.events + capped.events + failing.events


def realtime_errors() -> list[Json]:
    session, driver = test_realtime.make(hold_llm=True)
    for frame in ("not json", "[1, 2]", '{"event_id": "e0"}'):
        try:
            parse_client_event(frame, SessionKind.REALTIME)
        except ProtocolError as exc:
            session.error(exc)
    driver.pump()
    driver.send({"type": "bogus", "event_id": "e1"})
    driver.send({"type": "session.update", "event_id": "e2", "session": {"type": "realtime", "bogus": 1}})
    driver.send({"type": "conversation.item.create", "event_id": "e3"})
    driver.send({"type": "conversation.item.delete", "event_id": "e4", "item_id": 5})
    driver.send(_update(audio={"input": {"format": {"type": "audio/pcm", "rate": 16000}}}) | {"event_id": "e5"})
    driver.send({"type": "input_audio_buffer.append", "event_id": "e6", "audio": "not base64!"})
    driver.send({"type": "input_audio_buffer.commit", "event_id": "e7"})
    driver.send({"type": "response.cancel", "event_id": "e8"})
    for verb in ("delete", "retrieve"):
        driver.send({"type": f"conversation.item.{verb}", "event_id": f"e9{verb}", "item_id": "item_nope"})
    driver.send({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 0})
    added = driver.send(_user_text("Hi"))
    user_item = added[0]["item"]["id"]
    driver.send({"type": "conversation.item.truncate", "item_id": user_item, "content_index": 0, "audio_end_ms": 0})
    driver.send(_user_text("Hi") | {"previous_item_id": "item_nope"})
    driver.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "x"}]},
        }
    )
    driver.send({"type": "response.create"})
    driver.send({"type": "response.create", "event_id": "e10"})  # one active response at a time
    for _ in range(MAX_RESPONSES_IN_FLIGHT):  # out-of-band ones run side by side, up to our limit
        driver.send({"type": "response.create", "event_id": "e11", "response": {"conversation": "none"}})
    return driver.events


def transcription_failures() -> list[Json]:
    _, voice = test_realtime.make()
    voice.asr = FakeTranscriber(fail_on_seconds=0.5)
    voice.send(_update(audio={"input": {"transcription": {"model": "whisper-1"}}}))
    voice.append(tone(1500))
    voice.append(quiet(800))
    _, driver = test_transcription.make(asr=FakeTranscriber(fail_on_seconds=0.5))
    test_transcription.configure(driver, None)
    driver.append(tone(1200))
    driver.send({"type": "input_audio_buffer.commit"})
    return voice.events + driver.events


def realtime_session_echoes() -> list[Json]:
    """``session.updated`` after updates that set every field our sessions take."""
    _, driver = test_realtime.make()
    driver.send(
        _update(
            instructions="Be brief.",
            output_modalities=["audio"],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=200,
            truncation={"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {"post_instructions": 1000}},
            include=["item.input_audio_transcription.logprobs"],
            audio={
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "noise_reduction": {"type": "near_field"},
                    "transcription": {"model": "whisper-1", "language": "en", "prompt": "Paris"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.6,
                        "prefix_padding_ms": 200,
                        "silence_duration_ms": 400,
                        "idle_timeout_ms": 6000,
                        "create_response": False,
                        "interrupt_response": False,
                    },
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": "marin", "speed": 1.2},
            },
        )
    )
    driver.send(
        _update(
            audio={
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}},
            },
            truncation="disabled",
            max_output_tokens="inf",
            tool_choice="none",
        )
    )
    driver.send(_update(audio={"input": {"turn_detection": None, "transcription": None, "noise_reduction": None}}))
    driver.send(_update(tools=[], instructions="", truncation="auto", include=None))
    return driver.events


def transcription_session_echoes() -> list[Json]:
    _, driver = test_transcription.make()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcma"},
                        "noise_reduction": {"type": "far_field", "strength": 0.5},
                        "transcription": {
                            "model": "gpt-4o-transcribe",
                            "languages": ["en", "fr"],
                            "keywords": ["Paris"],
                            "prompt": "A talk about travel.",
                        },
                        "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                    }
                },
            },
        }
    )
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-realtime-whisper", "delay": "low", "languages": None},
                        "turn_detection": None,
                    }
                },
            },
        }
    )
    return driver.events


class TokenTranscriber(FakeTranscriber):
    """The fake transcriber, each word of its text one token (so ``include`` logprobs have some).

    Tokens need ``contracts.TokenLogprob`` (the logprobs work of issue 12); without it, plain text.
    """

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        heard = super().transcribe(audio, options)
        token = getattr(contracts, "TokenLogprob", None)
        if token is None:
            return heard
        segments = tuple(
            dataclasses.replace(
                segment,
                tokens=tuple(
                    token(f" {word}", -0.25, f" {word}".encode(), i) for i, word in enumerate(segment.text.split())
                ),
            )
            for segment in heard.segments
        )
        return dataclasses.replace(heard, segments=segments)


def transcription_logprobs() -> list[Json]:
    _, driver = test_transcription.make(asr=TokenTranscriber())
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "transcription",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": {"type": "server_vad"}}},
            },
        }
    )
    driver.append(quiet(300))
    driver.append(tone(2200))
    driver.append(quiet(700))
    return driver.events


def items_and_retrieve() -> list[Json]:
    """Every item type a client creates, each retrieved (an audio item with its audio), then deleted."""
    _, driver = test_realtime.make()
    items: list[Json] = [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Speak French."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": _pcm_b64(tone(1500))}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Bonjour."}]},
        {"type": "function_call", "name": "get_weather", "call_id": "call_1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    ]
    ids = []
    for item in items:
        added = driver.send({"type": "conversation.item.create", "item": item})
        ids.append(added[0]["item"]["id"])
    for item_id in ids:
        driver.send({"type": "conversation.item.retrieve", "item_id": item_id})
    driver.send({"type": "conversation.item.delete", "item_id": ids[0]})
    # A committed voice turn, retrieved with its audio in a transcription session too.
    _, transcription = test_transcription.make()
    test_transcription.configure(transcription, None)
    transcription.append(tone(1200))
    [committed, *_] = transcription.send({"type": "input_audio_buffer.commit"})
    transcription.send({"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
    transcription.send({"type": "conversation.item.delete", "item_id": committed["item_id"]})
    return driver.events + transcription.events


def input_buffer_and_idle_timeout() -> list[Json]:
    _, driver = test_realtime.make()
    driver.send(_update(audio={"input": {"turn_detection": None}}))
    driver.append(tone(600))
    driver.send({"type": "input_audio_buffer.clear"})
    driver.append(tone(600))
    driver.send({"type": "input_audio_buffer.commit"})
    driver.send({"type": "response.create"})
    driver.send(_update(audio={"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}}))
    driver.append(quiet(8000))
    return driver.events


def translation_session() -> list[Json]:
    _, driver = test_translation.make(
        asr=FakeTranscriber(test_translation.MEETING, words_per_second=4.0), tts=test_translation.Blip()
    )
    driver.configure()
    driver.send(
        {
            "type": "session.update",
            "session": {"audio": {"input": {"noise_reduction": {"type": "near_field", "strength": 0.5}}}},
        }
    )
    driver.send({"type": "session.update", "session": {"audio": {"output": {"language": "xx"}}}, "event_id": "u1"})
    driver.append(np.concatenate([quiet(200), tone(3200), quiet(600)]))
    driver.send({"type": "session.input_audio_buffer.append", "audio": "###"})
    driver.send({"type": "session.close"})
    return driver.events


def webrtc_call_playback() -> list[Json]:
    """A WebRTC call: the server plays the answer (``output_audio_buffer.*``), a barge-in clears it
    and truncates the item to what was played, then ``output_audio_buffer.clear`` from the client."""
    _, _, driver = test_server_playback.make_call()
    driver.send(_update(audio={"input": {"turn_detection": {"type": "server_vad"}}}))
    _, response_id, item_id = test_server_playback.answered(driver)
    test_server_playback.clock(driver, PlaybackStarted(response_id))
    test_server_playback.hear(driver, tone(400, rate_hz=test_server_playback.CALL_RATE_HZ))
    test_server_playback.clock(driver, PlaybackCleared((PlayedItem(response_id, item_id, 1000),)))
    _, response_id, _ = test_server_playback.answered(driver)
    test_server_playback.clock(driver, PlaybackStarted(response_id))
    test_server_playback.clock(driver, PlaybackStopped(response_id))
    driver.send({"type": "output_audio_buffer.clear", "event_id": "o1"})
    return driver.events


def mcp_tools() -> list[Json]:
    """MCP servers listed (and one unreachable), a call made and one failing, an approval asked."""
    mcp = mcp_fakes.FakeMcp()
    _, driver = mcp_fakes.make(mcp)
    never = mcp_fakes.mcp_tool(require_approval="never")
    driver.send(_update(tools=[never], tool_choice="required", output_modalities=["text"]))
    driver.send(_user_text("Weather in Paris?"))
    driver.send({"type": "response.create"})
    mcp.outputs = {}
    driver.send({"type": "response.create"})
    driver.send(_update(tools=[mcp_fakes.mcp_tool(server_label="other")]))
    request = next(
        e["item"] for e in driver.send({"type": "response.create"}) if e["type"] == "response.output_item.done"
    )
    approval = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
    driver.send({"type": "conversation.item.create", "item": approval})
    driver.send({"type": "response.create"})
    mcp.reachable = False
    driver.send(_update(tools=[mcp_fakes.mcp_tool(server_label="down")]))
    return driver.events


SCENARIOS: dict[str, Callable[[], list[Json]]] = {
    **{f"golden_{name}": scenario for name, scenario in test_golden.SCENARIOS.items()},
    "text_response": text_response,
    "spoken_turn_server_vad": spoken_turn_server_vad,
    "barge_in_and_truncate": barge_in_and_truncate,
    "tool_call_round_trip": tool_call_round_trip,
    "out_of_band_responses": out_of_band_responses,
    "response_outcomes": response_outcomes,
    "realtime_errors": realtime_errors,
    "transcription_failures": transcription_failures,
    "realtime_session_echoes": realtime_session_echoes,
    "transcription_session_echoes": transcription_session_echoes,
    "transcription_logprobs": transcription_logprobs,
    "items_and_retrieve": items_and_retrieve,
    "input_buffer_and_idle_timeout": input_buffer_and_idle_timeout,
    "webrtc_call_playback": webrtc_call_playback,
    "translation_session": translation_session,
    "mcp_tools": mcp_tools,
}
TRANSLATION_SCENARIOS = {"translation_session"}

#: What each scenario must emit at least once, so a scenario cannot quietly stop covering its events.
EXPECTED: dict[str, set[str]] = {
    "mcp_tools": {
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    },
    "text_response": {"response.output_text.delta", "response.output_text.done", "rate_limits.updated"},
    "spoken_turn_server_vad": {
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio.delta",
        "response.output_audio_transcript.done",
    },
    "barge_in_and_truncate": {"conversation.item.truncated", "response.output_audio.done", "response.done"},
    "tool_call_round_trip": {"response.function_call_arguments.delta", "response.function_call_arguments.done"},
    "out_of_band_responses": {"response.output_text.done", "response.function_call_arguments.done"},
    "response_outcomes": {"response.done"},
    "realtime_errors": {"error", "conversation.item.added"},
    "transcription_failures": {"conversation.item.input_audio_transcription.failed"},
    "realtime_session_echoes": {"session.updated"},
    "transcription_session_echoes": {"session.updated"},
    "transcription_logprobs": {"conversation.item.input_audio_transcription.completed"},
    "items_and_retrieve": {"conversation.item.retrieved", "conversation.item.deleted"},
    "input_buffer_and_idle_timeout": {"input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered"},
    "webrtc_call_playback": {
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "conversation.item.truncated",
    },
    "translation_session": {
        "session.created",
        "session.updated",
        "session.input_transcript.delta",
        "session.output_transcript.delta",
        "session.output_audio.delta",
        "session.closed",
        "error",
    },
}

#: The error codes a scenario must produce (the error event's shape is the same for every code).
EXPECTED_ERRORS: dict[str, set[str]] = {
    "realtime_errors": {
        "invalid_json",
        "missing_required_parameter",
        "invalid_value",
        "unknown_parameter",
        "invalid_type",
        "integer_below_min_value",
        "input_audio_buffer_commit_empty",
        "response_cancel_not_active",
        "item_delete_invalid_item_id",
        "item_retrieve_invalid_item_id",
        "item_truncate_invalid_item_id",
        "unsupported_content_type",
        "conversation_already_has_active_response",
        "too_many_active_responses",
    },
    "golden_transcription_manual": {"input_audio_buffer_commit_empty", "invalid_value"},
    "translation_session": {"invalid_value"},
}


def _sent(scenario: str) -> list[Json]:
    """A scenario's events with the ``event_id`` the codec stamps on every one (the drivers drop it)."""
    return [{"event_id": WIRE_EVENT_ID, **event} for event in SCENARIOS[scenario]()]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_server_event_fits_openais_schema_strictly(scenario: str) -> None:
    events = _sent(scenario)
    translation = scenario in TRANSLATION_SCENARIOS
    found = [f"{i}: {p}" for i, event in enumerate(events) for p in oracle.problems(event, translation=translation)]
    assert found == []
    missing = EXPECTED.get(scenario, set()) - {e["type"] for e in events}
    assert not missing, f"{scenario} no longer emits {sorted(missing)}"
    codes = {e["error"]["code"] for e in events if e["type"] == "error"}
    assert EXPECTED_ERRORS.get(scenario, set()) <= codes


def _our_event_types() -> dict[str, type[se.ServerEvent]]:
    models: dict[str, type[se.ServerEvent]] = {}
    for value in vars(se).values():
        if isinstance(value, type) and issubclass(value, se.ServerEvent) and value.__module__ == se.__name__:
            kind = value.model_fields["type"].default
            if isinstance(kind, str):
                models[kind] = value
    return models


def test_every_event_type_we_define_is_emitted_by_a_scenario_and_is_openais() -> None:
    emitted = {e["type"] for name in SCENARIOS for e in SCENARIOS[name]()}
    ours = _our_event_types()
    assert set(ours) - emitted == set()
    unknown = [t for t in ours if t not in oracle.REALTIME_MODELS and t not in oracle.TRANSLATION_MODELS]
    assert unknown == []


def test_the_oracle_catches_what_broke_pipecat() -> None:
    """A null OpenAI leaves out, a key its schema lacks, a wrong type: each is a failure."""
    session = {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": "sess_1",
        "audio": {"input": {"transcription": {"model": "whisper-1", "languages": None, "speaker": "x"}}},
    }
    found = oracle.problems({"type": "session.updated", "event_id": WIRE_EVENT_ID, "session": session})
    assert found == [
        "session.audio.input.transcription.languages: null where OpenAI leaves the key out",
        "session.audio.input.transcription.speaker: not a field of OpenAI's AudioTranscription",
    ]
    assert oracle.problems({"type": "input_audio_buffer.cleared", "event_id": 5}) != []
    assert oracle.problems({"type": "session.bogus", "event_id": WIRE_EVENT_ID}) != []
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": None}]}
    added = {"type": "conversation.item.added", "event_id": WIRE_EVENT_ID, "item": item}
    assert oracle.problems(added) == ["item.content[0].transcript: null where OpenAI leaves the key out"]
    user = {"type": "message", "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
    assert oracle.problems({**added, "item": user}) == []  # OpenAI's own null (reference 6.2)
    response = {"object": "realtime.response", "id": "resp_1", "output_modalities": None, "voice": "alloy"}
    assert oracle.problems({"type": "response.created", "event_id": WIRE_EVENT_ID, "response": response}) == [
        "response.output_modalities: null where OpenAI leaves the key out",
        "response.voice: not a field of OpenAI's RealtimeResponse",
    ]


def test_events_on_the_wire_carry_openais_event_id() -> None:
    frame = json.loads(dump_server_event(se.Cleared()))
    assert frame["event_id"].startswith("event_")
    assert len(frame["event_id"]) == len("event_") + 21
    assert oracle.problems(frame) == []


# --- client events: everything the SDK can send, we take --------------------------------------------

AUDIO = _pcm_b64(tone(200))
FULL_REALTIME_SESSION: Json = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "Be brief.",
    "output_modalities": ["text"],
    "max_output_tokens": 512,
    "tool_choice": "auto",
    "tools": [WEATHER_TOOL],
    "tracing": {"workflow_name": "support", "group_id": "g1", "metadata": {"team": "a"}},
    "truncation": {"type": "retention_ratio", "retention_ratio": 0.7, "token_limits": {"post_instructions": 2000}},
    "include": ["item.input_audio_transcription.logprobs"],
    "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
    "parallel_tool_calls": True,
    "reasoning": {"effort": "low"},
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "noise_reduction": {"type": "near_field", "strength": 0.8},
            "transcription": {"model": "whisper-1", "language": "en", "prompt": "Paris"},
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "idle_timeout_ms": 6000,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.1},
    },
}
FULL_TRANSCRIPTION_SESSION: Json = {
    "type": "transcription",
    "include": ["item.input_audio_transcription.logprobs"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcma"},
            "noise_reduction": {"type": "far_field"},
            "transcription": {
                "model": "gpt-live-transcribe",
                "languages": ["en", "fr"],
                "keywords": ["Paris"],
                "delay": "low",
                "prompt": "travel",
            },
            "turn_detection": {"type": "semantic_vad", "eagerness": "auto", "create_response": False},
        }
    },
}
FULL_RESPONSE: Json = {
    "conversation": "none",
    "metadata": {"topic": "sales"},
    "output_modalities": ["audio"],
    "instructions": "Classify.",
    "max_output_tokens": "inf",
    "tool_choice": {"type": "function", "name": "get_weather"},
    "tools": [WEATHER_TOOL],
    "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": {"id": "voice_1234"}}},
    "prompt": {"id": "pmpt_1", "version": "3", "variables": {"city": "Paris"}},
    "reasoning": {"effort": "minimal"},
    "parallel_tool_calls": False,
    "input": [
        {"type": "item_reference", "id": "item_1"},
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Be terse."}],
            "object": "realtime.item",
            "status": "completed",
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Hi"},
                {"type": "input_audio", "audio": AUDIO, "transcript": "hi"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
            ],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
        {"type": "function_call", "name": "get_weather", "call_id": "call_1", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
    ],
}
FULL_REALTIME_SESSION_FOR_MINT = {k: v for k, v in FULL_REALTIME_SESSION.items() if k != "prompt"}
ITEM_STATUS = {"id": "item_client_1", "object": "realtime.item", "status": "completed"}

REALTIME_CLIENT_EVENTS: dict[str, Json] = {
    "session.update realtime": {"type": "session.update", "event_id": "c1", "session": FULL_REALTIME_SESSION},
    "session.update realtime, the other shapes": _update(
        tool_choice={"type": "function", "name": "get_weather"},
        tracing="auto",
        truncation="disabled",
        audio={
            "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low", "interrupt_response": False}},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": {"id": "voice_1234"}},
        },
    ),
    "input_audio_buffer.append": {"type": "input_audio_buffer.append", "event_id": "c2", "audio": AUDIO},
    "input_audio_buffer.commit": {"type": "input_audio_buffer.commit", "event_id": "c3"},
    "input_audio_buffer.clear": {"type": "input_audio_buffer.clear", "event_id": "c4"},
    "conversation.item.create message": {
        "type": "conversation.item.create",
        "event_id": "c5",
        "previous_item_id": "root",
        "item": {**FULL_RESPONSE["input"][2], **ITEM_STATUS},
    },
    "conversation.item.create system": {"type": "conversation.item.create", "item": FULL_RESPONSE["input"][1]},
    "conversation.item.create assistant": {
        "type": "conversation.item.create",
        "item": {**FULL_RESPONSE["input"][3], **ITEM_STATUS},
    },
    "conversation.item.create function_call": {
        "type": "conversation.item.create",
        "item": {**FULL_RESPONSE["input"][4], **ITEM_STATUS},
    },
    "conversation.item.create function_call_output": {
        "type": "conversation.item.create",
        "item": {**FULL_RESPONSE["input"][5], **ITEM_STATUS},
    },
    "conversation.item.retrieve": {"type": "conversation.item.retrieve", "event_id": "c6", "item_id": "item_1"},
    "conversation.item.delete": {"type": "conversation.item.delete", "event_id": "c7", "item_id": "item_1"},
    "conversation.item.truncate": {
        "type": "conversation.item.truncate",
        "event_id": "c8",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1500,
    },
    "response.create": {"type": "response.create", "event_id": "c9", "response": FULL_RESPONSE},
    "response.create bare": {"type": "response.create"},
    "response.cancel": {"type": "response.cancel", "event_id": "c10", "response_id": "resp_1"},
}
TRANSCRIPTION_CLIENT_EVENTS: dict[str, Json] = {
    "session.update transcription": {"type": "session.update", "session": FULL_TRANSCRIPTION_SESSION},
    "input_audio_buffer.append": REALTIME_CLIENT_EVENTS["input_audio_buffer.append"],
    "input_audio_buffer.commit": REALTIME_CLIENT_EVENTS["input_audio_buffer.commit"],
    "input_audio_buffer.clear": REALTIME_CLIENT_EVENTS["input_audio_buffer.clear"],
    "conversation.item.retrieve": REALTIME_CLIENT_EVENTS["conversation.item.retrieve"],
    "conversation.item.delete": REALTIME_CLIENT_EVENTS["conversation.item.delete"],
}
TRANSLATION_CLIENT_EVENTS: dict[str, Json] = {
    "session.update": {
        "type": "session.update",
        "event_id": "t1",
        "session": {
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-realtime-whisper"},
                    "noise_reduction": {"type": "near_field", "strength": 0.5},
                },
                "output": {"language": "es"},
            }
        },
    },
    "session.input_audio_buffer.append": {
        "type": "session.input_audio_buffer.append",
        "event_id": "t2",
        "audio": AUDIO,
    },
    "session.close": {"type": "session.close", "event_id": "t3"},
}
REALTIME_CLIENT_EVENTS["session.update mcp tool"] = _update(
    tools=[
        {
            "type": "mcp",
            "server_label": "docs",
            "server_url": "https://mcp.example/mcp",
            "server_description": "Our documentation.",
            "authorization": "token",
            "headers": {"X-Team": "voice"},
            "allowed_tools": {"tool_names": ["search"], "read_only": True},
            "require_approval": {
                "always": {"tool_names": ["delete"], "read_only": False},
                "never": {"tool_names": ["search"], "read_only": True},
            },
            "allowed_callers": ["direct"],
            "defer_loading": False,
        },
        {
            "type": "mcp",
            "server_label": "w",
            "server_url": "http://w/mcp",
            "allowed_tools": ["a"],
            "require_approval": "never",
        },
    ]
)
REALTIME_CLIENT_EVENTS["response.create mcp"] = {
    "type": "response.create",
    "response": {
        "tools": REALTIME_CLIENT_EVENTS["session.update mcp tool"]["session"]["tools"],
        "tool_choice": {"type": "mcp", "server_label": "docs"},
        "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True, "reason": "ok"}],
    },
}
REALTIME_CLIENT_EVENTS["session.update mcp tool_choice"] = _update(
    tool_choice={"type": "mcp", "server_label": "docs", "name": "search"}
)
REALTIME_CLIENT_EVENTS["conversation.item.create mcp_approval_response"] = {
    "type": "conversation.item.create",
    "item": {
        "type": "mcp_approval_response",
        "id": "mcpa_1",
        "approval_request_id": "mcpr_1",
        "approve": False,
        "reason": "Not now.",
    },
}
#: MCP fields only OpenAI's own cloud can honour (session/mcp.py): refused by name, not ignored.
REFUSED_MCP_FIELDS = ("connector_id", "tunnel_id")
#: Conversation items the SDK types but a client cannot create here: the server makes them.
SERVER_MADE_ITEMS = ("RealtimeMcpToolCall", "RealtimeMcpListTools", "RealtimeMcpApprovalRequest")

#: What the SDK can send that we refuse, and why (each one an ``xfail(strict=True)`` below).
NOT_SUPPORTED: dict[str, tuple[Json, str]] = {
    "session.update mcp connector": (
        _update(tools=[{"type": "mcp", "server_label": "mail", "connector_id": "connector_gmail"}]),
        "OpenAI's hosted connectors (connector_id) live in OpenAI's cloud: a self-hosted server cannot reach them",
    ),
    "session.update mcp tunnel": (
        _update(tools=[{"type": "mcp", "server_label": "t", "tunnel_id": "tun_1"}]),
        "OpenAI's Secure MCP Tunnels (tunnel_id) end in OpenAI's cloud: a self-hosted server cannot reach them",
    ),
}


def _sdk_client_model(union: Any, event: Json) -> type[pydantic.BaseModel]:
    [model] = [m for m in typing.get_args(typing.get_args(union)[0]) if oracle._fits_tag(m, event["type"])]
    return model


def _check_is_sdk_event(union: Any, event: Json) -> None:
    """The example is an event the SDK's types can express: every key declared, every value typed.

    ``response.input`` is typed apart: the SDK's model of ``response.create`` lists conversation items
    only, while what its ``conn.response.create`` sends (``RealtimeResponseCreateParamsWithReferences``)
    also takes ``item_reference`` entries.
    """
    model = _sdk_client_model(union, event)
    response = event.get("response") or {}
    body = {**event, "response": {k: v for k, v in response.items() if k != "input"}} if response else event
    check = oracle.Check(event)
    check.value(body, [model], "", "")
    if "input" in response:
        check.value(response["input"], [list[ConversationItem | ResponseItemReference]], "response.input", "")
    assert [p for p in check.problems if "null where" not in p] == []
    model.model_validate(body)


@pytest.mark.parametrize("name", sorted(REALTIME_CLIENT_EVENTS))
def test_every_realtime_client_event_the_sdk_sends_is_accepted(name: str) -> None:
    event = REALTIME_CLIENT_EVENTS[name]
    _check_is_sdk_event(RealtimeClientEvent, event)
    parsed = parse_client_event(json.dumps(event), SessionKind.REALTIME)
    assert parsed.type == event["type"]


@pytest.mark.parametrize("name", sorted(TRANSCRIPTION_CLIENT_EVENTS))
def test_every_transcription_client_event_the_sdk_sends_is_accepted(name: str) -> None:
    event = TRANSCRIPTION_CLIENT_EVENTS[name]
    _check_is_sdk_event(RealtimeClientEvent, event)
    parsed = parse_client_event(json.dumps(event), SessionKind.TRANSCRIPTION)
    assert parsed.type == event["type"]


@pytest.mark.parametrize("name", sorted(TRANSLATION_CLIENT_EVENTS))
def test_every_translation_client_event_the_sdk_sends_is_accepted(name: str) -> None:
    event = TRANSLATION_CLIENT_EVENTS[name]
    _check_is_sdk_event(RealtimeTranslationClientEvent, event)
    parsed = parse_client_event(json.dumps(event), SessionKind.TRANSLATION)
    assert parsed.type == event["type"]


def _declared_paths(annotation: Any, prefix: str, out: set[str], seen: set[tuple[Any, str]]) -> None:
    """Every field path the SDK's types declare under ``annotation`` (list items as ``[]``)."""
    for member in oracle._members(annotation):
        if typing.get_origin(member) is list:
            _declared_paths(typing.get_args(member)[0], f"{prefix}[]", out, seen)
        elif oracle._is_model(member) and member.__name__ not in SERVER_MADE_ITEMS and (member, prefix) not in seen:
            seen.add((member, prefix))
            for name, declared in member.model_fields.items():
                if "Mcp" in member.__name__ and name in REFUSED_MCP_FIELDS:
                    continue  # NOT_SUPPORTED below
                path = f"{prefix}.{name}" if prefix else name
                out.add(path)
                _declared_paths(declared.annotation, path, out, seen)


def _used_paths(value: Any, prefix: str, out: set[str]) -> None:
    if isinstance(value, dict):
        for name, sub in value.items():
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            _used_paths(sub, path, out)
    elif isinstance(value, list):
        for sub in value:
            _used_paths(sub, f"{prefix}[]", out)


def test_the_examples_set_every_field_the_sdks_client_events_declare() -> None:
    declared: set[str] = set()
    seen: set[tuple[Any, str]] = set()
    for union in (RealtimeClientEvent, RealtimeTranslationClientEvent):
        for model in oracle._members(union):
            _declared_paths(model, "", declared, seen)
    used: set[str] = set()
    examples = {**REALTIME_CLIENT_EVENTS, **TRANSCRIPTION_CLIENT_EVENTS, **TRANSLATION_CLIENT_EVENTS}
    for event in examples.values():
        _used_paths(event, "", used)
    assert sorted(declared - used) == []


def test_the_sdks_realtime_client_event_types_are_all_exercised() -> None:
    sdk_types = {
        tag
        for model in typing.get_args(typing.get_args(RealtimeClientEvent)[0])
        for literal in [model.model_fields["type"].annotation]
        for tag in typing.get_args(literal)
    }
    ours = {e["type"] for e in REALTIME_CLIENT_EVENTS.values()}
    # output_audio_buffer.clear is WebRTC/SIP only; OpenAI refuses it on a WebSocket, and so do we.
    assert sdk_types - ours == {"output_audio_buffer.clear"}


def test_output_audio_buffer_clear_is_refused_on_a_websocket_as_openai_does() -> None:
    event = {"type": "output_audio_buffer.clear", "event_id": "o1"}
    _check_is_sdk_event(RealtimeClientEvent, event)
    with pytest.raises(ProtocolError) as refused:
        parse_client_event(json.dumps(event), SessionKind.REALTIME)
    assert (refused.value.code, refused.value.param, refused.value.event_id) == ("invalid_value", "type", "o1")


def test_a_realtime_session_takes_the_full_update_and_the_full_response_create() -> None:
    """Past the parser: the session itself answers with ``session.updated`` and a response."""
    _, driver = test_realtime.make()
    session = {k: v for k, v in FULL_REALTIME_SESSION.items() if k not in ("model", "prompt")}
    [updated] = driver.send({"type": "session.update", "session": session})
    assert updated["type"] == "session.updated", updated
    driver.send(_user_text("Hi"))
    response = {k: v for k, v in FULL_RESPONSE.items() if k not in ("prompt",)}
    response["input"] = [i for i in response["input"] if i["type"] != "item_reference"]
    response["input"] = [
        {**i, "content": [c for c in i["content"] if c["type"] != "input_image"]} if i["type"] == "message" else i
        for i in response["input"]
    ]
    events = driver.send({"type": "response.create", "response": response})
    assert events[0]["type"] == "response.created", events[0]
    assert [e for e in events if e["type"] == "error"] == []


@pytest.mark.parametrize("name", sorted(NOT_SUPPORTED))
def test_what_we_refuse_is_refused_with_a_clear_error(name: str) -> None:
    event, reason = NOT_SUPPORTED[name]
    _check_is_sdk_event(RealtimeClientEvent, event)
    with pytest.raises(ProtocolError) as refused:
        parse_client_event(json.dumps(event), SessionKind.REALTIME)
    assert refused.value.param, reason


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
        for name, (_, reason) in NOT_SUPPORTED.items()
    ],
)
def test_what_we_refuse_should_be_accepted(name: str) -> None:
    event, _ = NOT_SUPPORTED[name]
    parse_client_event(json.dumps(event), SessionKind.REALTIME)


# --- the session a minted client secret carries ---------------------------------------------------

MINT_BODIES: dict[str, tuple[str, Json, type[pydantic.BaseModel]]] = {
    "realtime": (
        "/v1/realtime/client_secrets",
        {"session": {**FULL_REALTIME_SESSION_FOR_MINT, "type": "realtime"}},
        ClientSecretCreateResponse,
    ),
    "transcription": (
        "/v1/realtime/client_secrets",
        {"session": {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}},
        ClientSecretCreateResponse,
    ),
    "translation": (
        "/v1/realtime/translations/client_secrets",
        {"session": {"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}},
        RealtimeTranslationClientSecretCreateResponse,
    ),
    "realtime without a model": ("/v1/realtime/client_secrets", {}, ClientSecretCreateResponse),
}
MINT_XFAIL = {
    "realtime without a model": (
        "session.model: null where OpenAI leaves the key out. server/sessions.py resolved_session writes "
        "model None when the secret names none (the model comes from ?model= at connect); not ours to change"
    )
}


@pytest.fixture
def mint_app() -> Iterator[Any]:
    from starlette.testclient import TestClient

    from openrealtime.engines.fake import EnergyVad, ToneSynthesizer, UppercaseTranslator
    from openrealtime.runtime.engines import EngineSet
    from openrealtime.server.app import create_app
    from openrealtime.server.settings import Settings

    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )
    with TestClient(create_app(Settings(), engines=engines)) as client:
        yield client
    engines.close()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            kind, marks=[pytest.mark.xfail(strict=True, reason=MINT_XFAIL[kind])] if kind in MINT_XFAIL else []
        )
        for kind in MINT_BODIES
    ],
)
def test_a_minted_client_secret_fits_openais_schema_strictly(mint_app: Any, kind: str) -> None:
    path, body, model = MINT_BODIES[kind]
    answer = mint_app.post(path, json=body)
    assert answer.status_code == 200, answer.text
    assert oracle.body_problems(answer.json(), model) == []


# --- through the server: the frames as they leave the socket ---------------------------------------


def _fake_engines() -> Any:
    from openrealtime.engines.fake import EnergyVad, ToneSynthesizer, UppercaseTranslator
    from openrealtime.runtime.engines import EngineSet

    return EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )


async def _frames_until(ws: Any, done: Callable[[Json], bool]) -> list[Json]:
    frames: list[Json] = []
    async with asyncio.timeout(TIMEOUT_S):
        while not frames or not done(frames[-1]):
            frame = await ws.recv()
            assert isinstance(frame, str)  # every server frame is TEXT
            frames.append(json.loads(frame))
    return frames


async def test_the_frames_a_live_server_sends_fit_openais_schema_strictly() -> None:
    """What the runtime writes on the socket (event ids, pacing, its own errors) is held to the same bar."""
    import websockets

    from openrealtime.server.embedded import running_server
    from openrealtime.server.settings import Settings

    engines = _fake_engines()
    frames: list[Json] = []
    try:
        async with running_server(Settings(port=0), engines=engines) as base:
            async with websockets.connect(f"{base}/v1/realtime?model=gpt-realtime") as ws:
                frames += await _frames_until(ws, lambda f: f["type"] == "session.created")
                transcription = {"model": "whisper-1"}
                turns = {"type": "server_vad", "silence_duration_ms": 300}
                await ws.send(
                    json.dumps(_update(audio={"input": {"transcription": transcription, "turn_detection": turns}}))
                )
                frames += await _frames_until(ws, lambda f: f["type"] == "session.updated")
                for chunk in (quiet(300), tone(2200), quiet(700)):
                    for start in range(0, chunk.size, 2400):
                        append = {"type": "input_audio_buffer.append", "audio": _pcm_b64(chunk[start : start + 2400])}
                        await ws.send(json.dumps(append))
                frames += await _frames_until(ws, lambda f: f["type"] == "rate_limits.updated")
                await ws.send(b"\x00binary")
                await ws.send("{not json")
                frames += await _frames_until(
                    ws, lambda f: f["type"] == "error" and f["error"]["code"] == "invalid_json"
                )
            async with websockets.connect(f"{base}/v1/realtime?intent=transcription") as ws:
                frames += await _frames_until(ws, lambda f: f["type"] == "session.created")
                await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "c1"}))
                frames += await _frames_until(ws, lambda f: f["type"] == "error")
    finally:
        engines.close()
    kinds = {f["type"] for f in frames}
    assert {"input_audio_buffer.committed", "response.output_audio.delta", "response.done"} <= kinds
    assert {f["error"]["code"] for f in frames if f["type"] == "error"} >= {"invalid_event", "invalid_json"}
    assert [f"{f['type']}: {p}" for f in frames for p in oracle.problems(f)] == []
