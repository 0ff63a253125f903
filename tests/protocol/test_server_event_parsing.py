"""The client's side of the codec: server events parsed leniently, whatever OpenAI adds or leaves out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent, dump_server_event, parse_server_event

EVENTS_WITH_A_TYPE = [
    cls
    for cls in vars(se).values()
    if isinstance(cls, type) and issubclass(cls, se.ServerEvent) and isinstance(cls.model_fields["type"].default, str)
]


def parse(raw: dict[str, Any]) -> se.ServerEvent | UnknownServerEvent:
    return parse_server_event(json.dumps(raw))


@pytest.mark.parametrize(
    "event",
    [
        se.Committed(previous_item_id=None, item_id="item_1"),
        se.Cleared(),
        se.TranscriptionDelta(item_id="item_1", delta="Hel", logprobs=[{"token": "Hel", "logprob": -0.1}]),
        se.OutputAudioTranscriptDone(
            response_id="resp_1", item_id="item_2", output_index=0, content_index=0, transcript="Hi."
        ),
        se.Error(
            error=se.ErrorDetail(
                type="invalid_request_error", code="invalid_json", message="bad", param=None, event_id="evt_1"
            )
        ),
        se.TranslationAudioDelta(delta="AAAA", elapsed_ms=120),
    ],
    ids=lambda event: event.type,
)
def test_what_the_server_sends_parses_back_to_the_same_event(event: se.ServerEvent) -> None:
    parsed = parse_server_event(dump_server_event(event, "event_1"))
    assert isinstance(parsed, type(event))
    assert parsed.model_dump() == event.model_dump()


@pytest.mark.parametrize("cls", EVENTS_WITH_A_TYPE, ids=lambda cls: cls.__name__)
def test_every_server_event_type_parses_from_its_type_alone(cls: type[se.ServerEvent]) -> None:
    """Every field missing: each takes the empty value of its type, and the event keeps its class."""
    event_type = cls.model_fields["type"].default
    parsed = parse({"type": event_type})
    assert isinstance(parsed, cls)
    assert parsed.type == event_type


def test_missing_fields_and_nulls_take_empty_values_and_unknown_fields_are_ignored() -> None:
    parsed = parse(
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "event_id": "event_9",
            "item_id": None,
            "obfuscation": "x1y2",
        }
    )
    assert isinstance(parsed, se.TranscriptionDelta)
    assert parsed.model_dump() == {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": "",
        "content_index": 0,
        "delta": "",
        "logprobs": None,
    }


def test_a_nullable_field_keeps_its_null() -> None:
    parsed = parse({"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_2"})
    assert isinstance(parsed, se.Committed)
    assert parsed.model_dump() == {
        "type": "input_audio_buffer.committed",
        "previous_item_id": None,
        "item_id": "item_2",
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"message": "Too fast.", "code": None, "retry_after": 3},
            {"type": "", "code": None, "message": "Too fast.", "param": None, "event_id": None},
        ),
        (None, {"type": "", "code": None, "message": "", "param": None, "event_id": None}),
    ],
    ids=["partial", "null"],
)
def test_a_nested_model_is_parsed_leniently_too(error: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    parsed = parse({"type": "error", "error": error})
    assert isinstance(parsed, se.Error)
    assert isinstance(parsed.error, se.ErrorDetail)
    assert parsed.error.model_dump() == expected


@pytest.mark.parametrize(
    ("raw", "expected_type"),
    [
        ({"type": "response.brand_new", "response_id": "resp_1", "n": [1, 2]}, "response.brand_new"),
        ({"response_id": "resp_1", "n": [1, 2]}, ""),
        ({"type": 7, "response_id": "resp_1", "n": [1, 2]}, ""),
    ],
    ids=["unknown-type", "no-type", "type-not-a-string"],
)
def test_an_event_with_no_model_is_kept_untyped(raw: dict[str, Any], expected_type: str) -> None:
    parsed = parse(raw)
    assert isinstance(parsed, UnknownServerEvent)
    assert parsed.type == expected_type
    assert parsed.model_extra == {"response_id": "resp_1", "n": [1, 2]}


def test_an_event_that_does_not_fit_its_model_is_kept_untyped_not_raised() -> None:
    raw = {"type": "input_audio_buffer.speech_started", "audio_start_ms": "soon", "item_id": "item_3"}
    parsed = parse(raw)
    assert type(parsed) is UnknownServerEvent
    assert parsed.type == "input_audio_buffer.speech_started"
    assert parsed.model_extra == {"audio_start_ms": "soon", "item_id": "item_3"}


def test_a_binary_frame_is_parsed_like_a_text_frame() -> None:
    parsed = parse_server_event(b'{"type":"input_audio_buffer.cleared","event_id":"event_2"}')
    assert isinstance(parsed, se.Cleared)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "the server sent a frame that is not JSON: Expecting value"),
        ("[1, 2]", "the server sent a frame that is not a JSON object"),
        ("null", "the server sent a frame that is not a JSON object"),
    ],
)
def test_a_frame_that_is_not_a_json_object_is_a_protocol_error(frame: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_event(frame)
    assert (info.value.code, info.value.message) == ("invalid_json", message)
