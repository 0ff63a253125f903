"""The WebSocket edge of a session's input: wire audio becomes samples before any session sees it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from openrealtime.audio.codec import AudioFormat, AudioOut, encode_audio, float_to_pcm16
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, server_event_dict
from openrealtime.runtime.wire import ClientFrames
from openrealtime.session.commands import AudioIn


def _append(data: bytes, kind: str = "input_audio_buffer.append") -> str:
    return json.dumps({"type": kind, "event_id": "e1", "audio": base64.b64encode(data).decode()})


def test_an_append_becomes_samples_at_its_rate_and_a_split_sample_waits_for_its_other_byte() -> None:
    samples = np.linspace(-0.5, 0.5, 9, dtype=np.float32)
    data = float_to_pcm16(samples)
    frames = ClientFrames(SessionKind.REALTIME)
    first = frames.parse(_append(data[:5]), AudioFormat.PCM)
    second = frames.parse(_append(data[5:]), AudioFormat.PCM)
    assert isinstance(first, AudioIn)
    assert isinstance(second, AudioIn)
    assert first.rate_hz == second.rate_hz == 24_000
    assert first.event_id == "e1"
    assert isinstance(first.event, ce.InputAudioBufferAppend)
    assert first.samples.size == 2
    assert second.samples.size == 7
    np.testing.assert_allclose(np.concatenate([first.samples, second.samples]), samples, atol=1 / 32768)


def test_g711_appends_decode_at_8_khz_and_a_format_change_drops_a_waiting_byte() -> None:
    frames = ClientFrames(SessionKind.TRANSCRIPTION)
    frames.parse(_append(b"\x00\x10\x20"), AudioFormat.PCM)  # one byte left waiting
    ulaw = encode_audio(np.full(80, 0.25, dtype=np.float32), AudioFormat.PCMU)
    audio = frames.parse(_append(ulaw), AudioFormat.PCMU)
    assert isinstance(audio, AudioIn)
    assert audio.rate_hz == 8_000
    assert audio.samples.size == 80
    np.testing.assert_allclose(audio.samples, 0.25, atol=0.01)
    again = frames.parse(_append(b"\x00\x10"), AudioFormat.PCM)
    assert isinstance(again, AudioIn)
    assert again.samples.size == 1


def test_translation_appends_are_decoded_too() -> None:
    frames = ClientFrames(SessionKind.TRANSLATION)
    audio = frames.parse(_append(b"\x00\x40" * 4, "session.input_audio_buffer.append"), AudioFormat.PCM)
    assert isinstance(audio, AudioIn)
    assert isinstance(audio.event, ce.TranslationAppend)
    np.testing.assert_allclose(audio.samples, 0.5)


def test_only_item_audio_without_a_transcript_is_decoded() -> None:
    frames = ClientFrames(SessionKind.REALTIME)

    def create(part: dict[str, object]) -> object:
        item = {"type": "message", "role": "user", "content": [part]}
        return frames.parse(json.dumps({"type": "conversation.item.create", "item": item}), AudioFormat.PCM)

    audio = base64.b64encode(b"\x00\x40" * 3).decode()
    decoded = create({"type": "input_audio", "audio": audio})
    assert isinstance(decoded, AudioIn)
    assert decoded.samples.size == 3
    assert isinstance(create({"type": "input_audio", "audio": audio, "transcript": "hi"}), ce.ConversationItemCreate)
    assert isinstance(create({"type": "input_text", "text": "hi"}), ce.ConversationItemCreate)


@pytest.mark.parametrize(
    ("audio", "code"),
    [("not base64!", "invalid_value"), ("A" * (16 * 1024 * 1024 * 4 // 3), "input_audio_buffer_append_too_large")],
)
def test_bad_audio_is_the_clients_error_on_the_audio_field(audio: str, code: str) -> None:
    frame = json.dumps({"type": "input_audio_buffer.append", "event_id": "e9", "audio": audio})
    with pytest.raises(ProtocolError) as raised:
        ClientFrames(SessionKind.REALTIME).parse(frame, AudioFormat.PCM)
    assert (raised.value.code, raised.value.param, raised.value.event_id) == (code, "audio", "e9")


def test_output_audio_leaves_the_session_as_samples_and_is_encoded_only_on_the_wire() -> None:
    samples = np.array([0.0, 0.5, -0.5], dtype=np.float32)
    ids = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
    event = se.OutputAudioDelta(**ids, audio=AudioOut(samples, AudioFormat.PCMA))
    assert event.audio is not None
    assert event.audio.rate_hz == 8_000
    wire = server_event_dict(event, "event_1")
    assert "audio" not in wire
    assert base64.b64decode(wire["delta"]) == encode_audio(samples, AudioFormat.PCMA)
    translated = server_event_dict(se.TranslationAudioDelta(audio=AudioOut(samples, AudioFormat.PCM)), "event_2")
    assert base64.b64decode(translated["delta"]) == float_to_pcm16(samples)
