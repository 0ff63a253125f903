"""The codec: every OpenAI error shape for a bad client frame, and the wire form of server events."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import (
    SessionKind,
    dump_server_event,
    new_event_id,
    parse_client_event,
    validation_error,
)
from openrealtime.protocol.config import (
    MAX_OUTPUT_TOKENS_CAP,
    InputTranscription,
    RealtimeSessionConfig,
    TranscriptionSessionConfig,
)

REALTIME_TYPES = (
    "'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', "
    "'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', "
    "'conversation.item.delete', 'conversation.item.retrieve', 'response.create', and 'response.cancel'"
)
TRANSCRIPTION_TYPES = (
    "'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', "
    "'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', "
    "'conversation.item.delete', and 'conversation.item.retrieve'"
)
TRANSLATION_TYPES = "'session.update', 'session.input_audio_buffer.append', and 'session.close'"
EVENT_ID = re.compile(r"event_[A-Za-z0-9]{21}")


def parse(event: dict[str, Any] | str, kind: SessionKind = SessionKind.REALTIME) -> ce.ClientEvent:
    return parse_client_event(event if isinstance(event, str) else json.dumps(event), kind)


def rejection(event: dict[str, Any] | str, kind: SessionKind = SessionKind.REALTIME) -> dict[str, Any]:
    """The error fields a bad frame gets, as one dict to compare whole."""
    with pytest.raises(ProtocolError) as info:
        parse(event, kind)
    err = info.value
    return {
        "type": err.error_type,
        "code": err.code,
        "message": err.message,
        "param": err.param,
        "event_id": err.event_id,
    }


def update(session: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": session, **extra}


def transcription_update(audio_input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return update({"type": "transcription", "audio": {"input": audio_input}}, **extra)


def error(code: str | None, message: str, param: str | None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": event_id,
    }


# --- frames that are not events ----------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["not json", "", "{", '{"type": "session.update",}', "\ud800"])
def test_invalid_json(frame: str) -> None:
    got = rejection(frame)
    assert got["code"] == "invalid_json"
    assert got["message"].startswith("Invalid event: failed to parse JSON value. ")
    assert (got["type"], got["param"], got["event_id"]) == ("invalid_request_error", None, None)


@pytest.mark.parametrize("frame", ["[1, 2]", "null", "42", '"session.update"', "true"])
def test_a_json_value_that_is_not_an_object(frame: str) -> None:
    assert rejection(frame) == error("invalid_json", "Invalid event: expected a JSON object.", None)


# --- the type -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [{"event_id": "evt_1"}, {"type": None, "event_id": "evt_1"}])
def test_missing_type(event: dict[str, Any]) -> None:
    assert rejection(event) == error(
        "missing_required_parameter", "Missing required parameter: 'type'.", "type", "evt_1"
    )


def test_unknown_type_lists_the_supported_types() -> None:
    assert rejection({"type": "nope", "event_id": "evt_2"}) == error(
        "invalid_value", f"Invalid value: 'nope'. Supported values are: {REALTIME_TYPES}.", "type", "evt_2"
    )


def test_a_type_that_is_not_a_string_is_an_unknown_type() -> None:
    assert rejection({"type": 5}) == error(
        "invalid_value", f"Invalid value: '5'. Supported values are: {REALTIME_TYPES}.", "type"
    )


@pytest.mark.parametrize(
    "event_type",
    ["transcription_session.update", "output_audio_buffer.clear", "session.input_audio_buffer.append"],
)
def test_types_outside_the_realtime_set_are_unknown(event_type: str) -> None:
    assert rejection({"type": event_type})["message"] == (
        f"Invalid value: '{event_type}'. Supported values are: {REALTIME_TYPES}."
    )


@pytest.mark.parametrize("event_type", ["response.create", "response.cancel"])
def test_transcription_sessions_have_no_response_events(event_type: str) -> None:
    assert rejection({"type": event_type, "event_id": "e"}, SessionKind.TRANSCRIPTION) == error(
        "invalid_value",
        f"Invalid value: '{event_type}'. Supported values are: {TRANSCRIPTION_TYPES}.",
        "type",
        "e",
    )


@pytest.mark.parametrize("event_type", ["input_audio_buffer.append", "response.create", "nope"])
def test_translation_sessions_have_their_own_events(event_type: str) -> None:
    assert rejection({"type": event_type, "audio": "AAAA"}, SessionKind.TRANSLATION) == error(
        "invalid_value",
        f"Invalid value: '{event_type}'. Supported values are: {TRANSLATION_TYPES}.",
        "type",
    )


# --- unknown fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "param"),
    [
        ({"type": "input_audio_buffer.commit", "bogus": 1}, "bogus"),
        (update({"type": "realtime", "bogus_field": True}), "session.bogus_field"),
        (update({"type": "realtime", "audio": {"input": {"bogus": 1}}}), "session.audio.input.bogus"),
        (transcription_update({"bogus": 1}), "session.audio.input.bogus"),
        (
            transcription_update({"transcription": {"model": "m", "x": 1}}),
            "session.audio.input.transcription.x",
        ),
        (
            transcription_update({"turn_detection": {"type": "semantic_vad", "silence_duration_ms": 5}}),
            "session.audio.input.turn_detection.silence_duration_ms",
        ),
        (
            transcription_update({"format": {"type": "audio/pcmu", "rate": 8000}}),
            "session.audio.input.format.rate",
        ),
        (
            update({"type": "realtime", "tools": [{"type": "function", "name": "f", "meta": {}}]}),
            "session.tools[0].meta",
        ),
        (
            update({"type": "realtime", "tools": [{"name": "f"}, {"name": "g", "strict": True}]}),
            "session.tools[1].strict",
        ),
        (
            update({"type": "realtime", "tool_choice": {"type": "function", "name": "f", "x": 1}}),
            "session.tool_choice.x",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hi", "y": 1}],
                },
            },
            "item.content[0].y",
        ),
        (
            {
                "type": "response.create",
                "response": {
                    "input": [
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "x", "q": 1}],
                        }
                    ]
                },
            },
            "response.input[0].content[0].q",
        ),
    ],
)
def test_unknown_parameter_names_its_exact_path(event: dict[str, Any], param: str) -> None:
    got = rejection({**event, "event_id": "evt_3"})
    assert got == error("unknown_parameter", f"Unknown parameter: '{param}'.", param, "evt_3")


def test_unknown_parameter_in_a_translation_session() -> None:
    got = rejection(update({"audio": {"output": {"bogus": "es"}}}), SessionKind.TRANSLATION)
    assert got == error(
        "unknown_parameter", "Unknown parameter: 'session.audio.output.bogus'.", "session.audio.output.bogus"
    )


# --- missing fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "param"),
    [
        ({"type": "input_audio_buffer.append"}, "audio"),
        ({"type": "session.update"}, "session"),
        (update({}), "session.type"),
        (update({"audio": {"input": {}}}), "session.type"),
        (update({"type": "realtime", "tools": [{"type": "function"}]}), "session.tools[0].name"),
        (update({"type": "realtime", "tool_choice": {"type": "function"}}), "session.tool_choice.name"),
        (
            update({"type": "realtime", "truncation": {"type": "retention_ratio"}}),
            "session.truncation.retention_ratio",
        ),
        (transcription_update({"format": {"rate": 24000}}), "session.audio.input.format.type"),
        (
            transcription_update({"noise_reduction": {"strength": 0.5}}),
            "session.audio.input.noise_reduction.type",
        ),
        ({"type": "conversation.item.create", "item": {"role": "user"}}, "item.type"),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
            },
            "item.content[0].text",
        ),
        ({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0}, "audio_end_ms"),
        ({"type": "conversation.item.delete"}, "item_id"),
    ],
)
def test_missing_required_parameter(event: dict[str, Any], param: str) -> None:
    assert rejection({**event, "event_id": "evt_4"}) == error(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param, "evt_4"
    )


# --- values out of range ------------------------------------------------------------------------------


def test_rate_16000_is_below_the_minimum() -> None:
    got = rejection(transcription_update({"format": {"type": "audio/pcm", "rate": 16000}}, event_id="upd_1"))
    assert got == error(
        "integer_below_min_value",
        "Invalid 'session.audio.input.format.rate': Expected a value >= 24000",
        "session.audio.input.format.rate",
        "upd_1",
    )


def test_rate_above_24000_is_above_the_maximum() -> None:
    got = rejection(update({"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcm", "rate": 48000}}}}))
    assert (got["code"], got["param"]) == ("integer_above_max_value", "session.audio.output.format.rate")


@pytest.mark.parametrize(
    ("audio_input", "code", "param", "message"),
    [
        (
            {"turn_detection": {"type": "server_vad", "silence_duration_ms": -1}},
            "integer_below_min_value",
            "session.audio.input.turn_detection.silence_duration_ms",
            "expected a value >= 0, but got -1 instead.",
        ),
        (
            {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 100}},
            "integer_below_min_value",
            "session.audio.input.turn_detection.idle_timeout_ms",
            "expected a value >= 5000, but got 100 instead.",
        ),
        (
            {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 10_001}},
            "integer_above_max_value",
            "session.audio.input.turn_detection.prefix_padding_ms",
            "expected a value <= 10000, but got 10001 instead.",
        ),
        # A decimal field is a decimal field even when the client sends a whole number.
        (
            {"turn_detection": {"type": "server_vad", "threshold": 2}},
            "decimal_above_max_value",
            "session.audio.input.turn_detection.threshold",
            "expected a value <= 1.0, but got 2 instead.",
        ),
        (
            {"turn_detection": {"type": "server_vad", "threshold": -0.5}},
            "decimal_below_min_value",
            "session.audio.input.turn_detection.threshold",
            "expected a value >= 0.0, but got -0.5 instead.",
        ),
        (
            {"noise_reduction": {"type": "near_field", "strength": 1.5}},
            "decimal_above_max_value",
            "session.audio.input.noise_reduction.strength",
            "expected a value <= 1.0, but got 1.5 instead.",
        ),
    ],
)
def test_numbers_out_of_range(audio_input: dict[str, Any], code: str, param: str, message: str) -> None:
    assert rejection(transcription_update(audio_input)) == error(code, f"Invalid '{param}': {message}", param)


@pytest.mark.parametrize("tokens", [0, -3, MAX_OUTPUT_TOKENS_CAP + 1])
def test_max_output_tokens_out_of_range(tokens: int) -> None:
    got = rejection(update({"type": "realtime", "max_output_tokens": tokens}, event_id="upd_2"))
    assert got == error(
        "invalid_value",
        f"Invalid 'session.max_output_tokens': Expected a value between 1 and {MAX_OUTPUT_TOKENS_CAP}, or 'inf'",
        "session.max_output_tokens",
        "upd_2",
    )


@pytest.mark.parametrize("tokens", [1, MAX_OUTPUT_TOKENS_CAP, "inf"])
def test_max_output_tokens_in_range(tokens: int | str) -> None:
    event = parse(update({"type": "realtime", "max_output_tokens": tokens}))
    assert isinstance(event, ce.SessionUpdate)
    assert event.session == RealtimeSessionConfig(max_output_tokens=tokens)


def test_truncate_at_a_negative_time() -> None:
    got = rejection({"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": -5})
    assert got == error(
        "integer_below_min_value",
        "Invalid 'audio_end_ms': expected a value >= 0, but got -5 instead.",
        "audio_end_ms",
    )


# --- enum values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "param", "message"),
    [
        (
            transcription_update({"transcription": {"model": "gpt-realtime-whisper", "delay": "bogus"}}),
            "session.audio.input.transcription.delay",
            "Invalid value: 'bogus'. Supported values are: 'minimal', 'low', 'medium', 'high', and 'xhigh'.",
        ),
        (
            transcription_update({"turn_detection": {"type": "semantic_vad", "eagerness": "x"}}),
            "session.audio.input.turn_detection.eagerness",
            "Invalid value: 'x'. Supported values are: 'low', 'medium', 'high', and 'auto'.",
        ),
        (
            update({"type": "realtime", "tool_choice": "bogus"}),
            "session.tool_choice",
            "Invalid value: 'bogus'. Supported values are: 'auto', 'none', and 'required'.",
        ),
        (
            update({"type": "bogus"}),
            "session.type",
            "Invalid value: 'bogus'. Supported values are: 'realtime' and 'transcription'.",
        ),
        (
            transcription_update({"format": {"type": "audio/wav"}}),
            "session.audio.input.format.type",
            "Invalid value: 'audio/wav'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
        ),
        (
            transcription_update({"turn_detection": {"type": "nope"}}),
            "session.audio.input.turn_detection.type",
            "Invalid value: 'nope'. Supported values are: 'server_vad' and 'semantic_vad'.",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "x"}]},
            },
            "item.content[0].type",
            "Invalid value: 'x'. Supported values are: 'input_text', 'input_audio', 'input_image', "
            "'output_text', and 'output_audio'.",
        ),
        (
            update({"type": "realtime", "include": ["item.bogus"]}),
            "session.include[0]",
            "Invalid value: 'item.bogus'. Supported values are: 'item.input_audio_transcription.logprobs'.",
        ),
    ],
)
def test_invalid_enum_value(event: dict[str, Any], param: str, message: str) -> None:
    assert rejection({**event, "event_id": "evt_5"}) == error("invalid_value", message, param, "evt_5")


def test_translation_session_update_only_takes_translation() -> None:
    got = rejection(update({"type": "realtime"}), SessionKind.TRANSLATION)
    assert got == error(
        "invalid_value", "Invalid value: 'realtime'. Supported values are: 'translation'.", "session.type"
    )


def test_validator_failures_are_invalid_value() -> None:
    got = rejection(update({"type": "realtime", "output_modalities": ["audio", "text"]}))
    assert got == error(
        "invalid_value",
        "Invalid 'session.output_modalities': output_modalities must be ['audio'] or ['text']",
        "session.output_modalities",
    )


@pytest.mark.parametrize("modality", ["audio", "text"])
def test_one_output_modality_is_accepted(modality: str) -> None:
    event = parse(update({"type": "realtime", "output_modalities": [modality]}))
    assert isinstance(event, ce.SessionUpdate)
    assert event.session.model_dump(mode="json", exclude_unset=True) == {
        "type": "realtime",
        "output_modalities": [modality],
    }


class _Checked(BaseModel):
    """A model whose validator raises without the ``code:`` prefix our config validators use."""

    word: str

    @field_validator("word")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 3:
            raise ValueError("too long")
        return value


def test_a_validator_message_without_a_code_prefix_is_kept_whole() -> None:
    with pytest.raises(ValidationError) as info:
        _Checked(word="long")
    err = validation_error(info.value, "evt_6")
    assert (err.error_type, err.code, err.message, err.param, err.event_id) == (
        "invalid_request_error",
        "invalid_value",
        "Invalid 'word': too long",  # the validator's whole text: nothing taken for a code
        "word",
        "evt_6",
    )


# --- types --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "param"),
    [
        ({"type": "input_audio_buffer.append", "audio": 5}, "audio"),
        (update({"type": "realtime", "instructions": 5}), "session.instructions"),
        (update({"type": "realtime", "max_output_tokens": "lots"}), "session.max_output_tokens"),
        (update({"type": "realtime", "audio": {"output": {"voice": 5}}}), "session.audio.output.voice"),
        (update({"type": "realtime", "tools": {"name": "f"}}), "session.tools"),
    ],
)
def test_invalid_type(event: dict[str, Any], param: str) -> None:
    got = rejection(event)
    assert (got["code"], got["param"]) == ("invalid_type", param)
    assert got["message"].startswith(f"Invalid type for '{param}': ")


def test_a_non_string_event_id_is_not_copied() -> None:
    got = rejection({"type": "input_audio_buffer.commit", "event_id": 7})
    assert (got["code"], got["param"], got["event_id"]) == ("invalid_type", "event_id", None)


# --- event_id -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"type": "nope"},
        {"type": "input_audio_buffer.commit", "x": 1},
        {"type": "input_audio_buffer.append"},
        transcription_update({"format": {"type": "audio/pcm", "rate": 16000}}),
    ],
)
def test_the_clients_event_id_is_copied_into_every_error(event: dict[str, Any]) -> None:
    assert rejection({**event, "event_id": "client_chosen_42"})["event_id"] == "client_chosen_42"
    assert rejection(event)["event_id"] is None


# --- events that parse --------------------------------------------------------------------------------


def test_append_parses_with_its_event_id() -> None:
    event = parse({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "a1"})
    assert event == ce.InputAudioBufferAppend(type="input_audio_buffer.append", audio="AAAA", event_id="a1")


def test_a_transcription_session_update_keeps_exactly_the_fields_set() -> None:
    event = parse(
        transcription_update(
            {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en", "delay": "low"},
                "turn_detection": None,
            }
        ),
        SessionKind.TRANSCRIPTION,
    )
    assert isinstance(event, ce.SessionUpdate)
    assert isinstance(event.session, TranscriptionSessionConfig)
    assert event.session.audio.input.transcription == InputTranscription(
        model="gpt-4o-transcribe", language="en", delay="low"
    )
    assert event.session.model_dump(mode="json", exclude_unset=True) == {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en", "delay": "low"},
                "turn_detection": None,
            }
        },
    }


@pytest.mark.parametrize(
    ("event", "model"),
    [
        ({"type": "input_audio_buffer.commit", "event_id": "commit_1"}, ce.InputAudioBufferCommit),
        ({"type": "input_audio_buffer.clear"}, ce.InputAudioBufferClear),
        ({"type": "conversation.item.retrieve", "item_id": "item_1"}, ce.ConversationItemRetrieve),
        ({"type": "conversation.item.delete", "item_id": "item_1"}, ce.ConversationItemDelete),
    ],
)
def test_transcription_kind_events(event: dict[str, Any], model: type[ce.ClientEvent]) -> None:
    parsed = parse(event, SessionKind.TRANSCRIPTION)
    assert type(parsed) is model
    assert parsed.model_dump(exclude_unset=True) == event


def test_realtime_kind_response_events() -> None:
    create = parse({"type": "response.create", "response": {"instructions": "Be brief."}})
    assert isinstance(create, ce.ResponseCreate)
    assert create.response is not None
    assert create.response.instructions == "Be brief."
    cancel = parse({"type": "response.cancel", "response_id": "resp_1"})
    assert cancel == ce.ResponseCancel(type="response.cancel", response_id="resp_1")


def test_translation_kind_events() -> None:
    updated = parse(update({"audio": {"output": {"language": "es"}}}, event_id="t1"), SessionKind.TRANSLATION)
    assert isinstance(updated, ce.TranslationSessionUpdate)
    assert updated.event_id == "t1"
    assert updated.session.audio.output.language == "es"
    appended = parse({"type": "session.input_audio_buffer.append", "audio": "AAAA"}, SessionKind.TRANSLATION)
    assert appended == ce.TranslationAppend(type="session.input_audio_buffer.append", audio="AAAA")
    closed = parse({"type": "session.close"}, SessionKind.TRANSLATION)
    assert closed == ce.SessionClose(type="session.close")


# --- server events ------------------------------------------------------------------------------------


def test_new_event_ids_have_openais_shape_and_do_not_repeat() -> None:
    ids = {new_event_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(EVENT_ID.fullmatch(i) for i in ids)


def test_dump_stamps_a_fresh_event_id_with_type_first() -> None:
    event = se.Committed(previous_item_id=None, item_id="item_1")
    frame = dump_server_event(event)
    wire = json.loads(frame)
    assert list(wire) == ["type", "event_id", "previous_item_id", "item_id"]
    assert wire == {
        "type": "input_audio_buffer.committed",
        "event_id": wire["event_id"],
        "previous_item_id": None,
        "item_id": "item_1",
    }
    assert EVENT_ID.fullmatch(wire["event_id"])
    assert json.loads(dump_server_event(event))["event_id"] != wire["event_id"]
    assert " " not in frame  # compact separators


def test_dump_keeps_a_given_event_id() -> None:
    frame = dump_server_event(se.Cleared(), "event_055")
    assert frame == '{"type":"input_audio_buffer.cleared","event_id":"event_055"}'


def test_dump_an_error_event_in_openais_shape() -> None:
    event = se.Error(
        error=se.ErrorDetail(
            type="invalid_request_error",
            code="unknown_parameter",
            message="Unknown parameter: 'session.bogus_field'.",
            param="session.bogus_field",
            event_id="evt_9",
        )
    )
    assert json.loads(dump_server_event(event, "event_1")) == {
        "type": "error",
        "event_id": "event_1",
        "error": {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.bogus_field'.",
            "param": "session.bogus_field",
            "event_id": "evt_9",
        },
    }


@pytest.mark.parametrize(
    ("own_event_id", "given_event_id", "expected"),
    [("evt_client", "evt_other", "evt_client"), (None, "evt_other", "evt_other"), (None, None, None)],
)
def test_the_error_event_of_a_protocol_error(
    own_event_id: str | None, given_event_id: str | None, expected: str | None
) -> None:
    """The error's own ``event_id`` (read from the frame) wins over the one the session passes."""
    exc = ProtocolError("Unknown parameter: 'x'.", code="unknown_parameter", param="x", event_id=own_event_id)
    assert json.loads(dump_server_event(se.Error.of(exc, given_event_id), "event_7")) == {
        "type": "error",
        "event_id": "event_7",
        "error": {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'x'.",
            "param": "x",
            "event_id": expected,
        },
    }


def test_dump_omits_unset_logprobs_but_keeps_set_ones() -> None:
    plain = json.loads(dump_server_event(se.TranscriptionDelta(item_id="item_1", delta="Hello"), "event_2"))
    assert plain == {
        "type": "conversation.item.input_audio_transcription.delta",
        "event_id": "event_2",
        "item_id": "item_1",
        "content_index": 0,
        "delta": "Hello",
    }
    logprobs = [{"token": "Hello", "logprob": -0.01, "bytes": [72, 101, 108, 108, 111]}]
    with_logprobs = se.TranscriptionDelta(item_id="item_1", delta="Hello", logprobs=logprobs)
    assert json.loads(dump_server_event(with_logprobs, "event_3"))["logprobs"] == logprobs


def test_dump_completed_transcription() -> None:
    event = se.TranscriptionCompleted(
        item_id="item_T1", transcript="Hello world.", usage={"type": "duration", "seconds": 2}
    )
    assert json.loads(dump_server_event(event, "event_061")) == {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "event_061",
        "item_id": "item_T1",
        "content_index": 0,
        "transcript": "Hello world.",
        "usage": {"type": "duration", "seconds": 2},
    }
