"""The client's view of server events: the protocol's models, parsed leniently."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent, parse_server_event, server_event_from_dict


def test_fields_openai_adds_are_ignored_and_the_event_is_the_protocols_model() -> None:
    frame = {"type": "input_audio_buffer.speech_started", "event_id": "e1", "audio_start_ms": 40, "item_id": "i1"}
    event = parse_server_event(json.dumps({**frame, "new_field": {"x": 1}}))
    assert isinstance(event, se.SpeechStarted)
    assert (event.audio_start_ms, event.item_id) == (40, "i1")
    assert not hasattr(event, "new_field")


def test_a_missing_or_null_field_takes_its_empty_value_and_nullable_ones_stay_null() -> None:
    error = server_event_from_dict({"type": "error", "error": {"message": "no", "code": None}})
    assert isinstance(error, se.Error)
    assert error.error.model_dump() == {"type": "", "code": None, "message": "no", "param": None, "event_id": None}
    delta = server_event_from_dict({"type": "response.output_audio_transcript.delta", "item_id": "a", "delta": None})
    assert isinstance(delta, se.OutputAudioTranscriptDelta)
    assert (delta.response_id, delta.output_index, delta.delta) == ("", 0, "")
    done = server_event_from_dict({"type": "response.done"})
    assert isinstance(done, se.ResponseDone)
    assert done.response == {}


def test_unknown_types_and_misfits_are_kept_untyped() -> None:
    new = server_event_from_dict({"type": "response.brand_new", "x": 1})
    assert isinstance(new, UnknownServerEvent)
    assert (new.type, new.model_extra) == ("response.brand_new", {"x": 1})
    misfit = server_event_from_dict({"type": "conversation.item.truncated", "item_id": "a", "audio_end_ms": "soon"})
    assert isinstance(misfit, UnknownServerEvent)
    assert misfit.type == "conversation.item.truncated"
    assert server_event_from_dict({}) == UnknownServerEvent(type="")


@pytest.mark.parametrize("frame", ["{not json", "[1, 2]"])
def test_a_frame_that_is_not_a_json_object_is_refused(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_server_event(frame)


def test_the_servers_own_models_stay_strict() -> None:
    server_event_from_dict({"type": "input_audio_buffer.speech_started"})  # builds the lenient variants
    with pytest.raises(ValidationError):
        se.SpeechStarted.model_validate({"audio_start_ms": 0, "item_id": "a", "new_field": 1})
    with pytest.raises(ValidationError):
        se.SpeechStarted.model_validate({"item_id": "a"})
