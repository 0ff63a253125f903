"""Server playback (WebRTC calls): the session sends its speech as PlayAudio commands, turns the media
clock's results into ``output_audio_buffer.*`` events, and truncates what a clear cut off to what was
played. WebSocket sessions are unchanged (their golden transcripts prove it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openrealtime.engines.fake import EnergyVad
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol.codec import SessionKind, parse_client_event
from openrealtime.runtime.wire import ClientFrames
from openrealtime.session.commands import (
    AudioIn,
    ClearPlayback,
    EndOfAudio,
    PlayAudio,
    PlaybackCleared,
    PlaybackStarted,
    PlaybackStopped,
    PlayedItem,
)
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import tone
from tests.session.driver import RealtimeDriver, error_event
from tests.session.test_realtime import RESPONSE_TAIL, say, types

CALL_RATE_HZ = 48_000
# What the agents SDK sends on connect (reference 1.3), both accepted as they are.
SDK_UPDATES = (
    {"type": "realtime", "tracing": "auto"},
    {
        "type": "realtime",
        "instructions": "Be brief.",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "noise_reduction": None,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "semantic_vad"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "speed": 1},
        },
    },
)


class Recording:
    """The session, with every command it drains kept for the test."""

    def __init__(self, session: RealtimeSession) -> None:
        self.inner = session
        self.commands: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def drain(self) -> tuple[list[Any], list[Any]]:
        events, commands = self.inner.drain()
        self.commands += commands
        return events, commands

    def playback(self) -> list[Any]:
        """The playback commands drained so far, then forgotten."""
        kept = [c for c in self.commands if isinstance(c, PlayAudio | EndOfAudio | ClearPlayback)]
        self.commands = []
        return kept


def make_call(*, server_playback: bool = True, **kwargs: Any) -> tuple[RealtimeSession, Recording, RealtimeDriver]:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: True)
    info = RealtimeInfo(base=base, model="gpt-realtime", instructions="Be brief.", server_playback=server_playback)
    session = RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
    recording = Recording(session)
    driver = RealtimeDriver(recording, **kwargs)
    driver.frames = ClientFrames(SessionKind.REALTIME, call=server_playback)
    driver.pump()
    return session, recording, driver


def hear(driver: RealtimeDriver, samples: Any) -> list[dict[str, Any]]:
    """Audio from the call's track, 100 ms at a time (48 kHz, as the media port posts it)."""
    out: list[dict[str, Any]] = []
    append = ce.InputAudioBufferAppend(type="input_audio_buffer.append", audio="")
    step = CALL_RATE_HZ // 10
    for start in range(0, samples.size, step):
        driver.session.receive(AudioIn(append, samples[start : start + step], CALL_RATE_HZ))
        out += driver.pump()
    return out


def clock(driver: RealtimeDriver, result: Any) -> list[dict[str, Any]]:
    driver.session.on_playback(result)
    return driver.pump()


def answered(driver: RealtimeDriver) -> tuple[list[dict[str, Any]], str, str]:
    """A text turn answered in full: its events, the response id and the answer's item id."""
    say(driver, "Hello?")
    events = driver.send({"type": "response.create"})
    return events, events[0]["response"]["id"], events[1]["item"]["id"]


def test_speech_is_played_by_the_server_not_sent_as_deltas() -> None:
    session, recording, driver = make_call()
    events, response_id, item_id = answered(driver)
    assert "response.output_audio.delta" not in types(events)
    assert types(events)[-7:] == RESPONSE_TAIL
    commands = recording.playback()
    plays = [c for c in commands if isinstance(c, PlayAudio)]
    assert plays
    assert commands[-1] == EndOfAudio(response_id)
    assert {(p.response_id, p.item_id) for p in plays} == {(response_id, item_id)}
    played = sum(p.samples.size for p in plays)
    entry = session.conversation.get(item_id)
    assert entry is not None
    assert entry.audio_ms == played * 1000 // 24_000  # audio_ms counts the 24 kHz samples sent
    # The transcript still goes out, word for word with the audio.
    words = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert words == "Hello there. How can I help you today?"


def test_a_call_plays_24_khz_whatever_the_output_format() -> None:
    session, recording, driver = make_call()
    driver.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}},
        }
    )
    _, _, item_id = answered(driver)
    played = sum(c.samples.size for c in recording.playback() if isinstance(c, PlayAudio))
    entry = session.conversation.get(item_id)
    assert entry is not None
    assert entry.audio_ms == played * 1000 // 24_000


def test_started_and_stopped_come_from_the_media_clock() -> None:
    _, _, driver = make_call()
    _, response_id, _ = answered(driver)
    assert clock(driver, PlaybackStarted(response_id)) == [
        {"type": "output_audio_buffer.started", "response_id": response_id}
    ]
    assert clock(driver, PlaybackStopped(response_id)) == [
        {"type": "output_audio_buffer.stopped", "response_id": response_id}
    ]
    assert clock(driver, PlaybackStopped(response_id)) == []  # once
    assert clock(driver, PlaybackStarted("resp_unknown")) == []


def test_barge_in_after_response_done_clears_and_truncates_to_what_was_played() -> None:
    session, recording, driver = make_call()
    driver.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}},
        }
    )
    events, response_id, item_id = answered(driver)
    assert events[-2]["response"]["status"] == "completed"  # generated long before it is heard
    clock(driver, PlaybackStarted(response_id))
    recording.playback()
    barge = hear(driver, tone(400, rate_hz=CALL_RATE_HZ))
    assert types(barge) == ["input_audio_buffer.speech_started"]  # no response to cancel any more
    assert recording.playback() == [ClearPlayback()]
    # "Hello there." (12 characters at 60 ms) was heard, the rest was not.
    cleared = clock(driver, PlaybackCleared((PlayedItem(response_id, item_id, 1000),)))
    assert cleared == [
        {"type": "output_audio_buffer.cleared", "response_id": response_id},
        {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": 1000},
    ]
    entry = session.conversation.get(item_id)
    assert entry is not None
    assert entry.audio_ms == 1000
    heard = entry.item["content"][0]["transcript"]
    assert heard.startswith("Hello there.")
    assert "today" not in heard
    # Nothing is queued any more: a late stop from the track says nothing.
    assert not session.playback.pending
    assert clock(driver, PlaybackStopped(response_id)) == []


def test_barge_in_while_generating_cancels_then_clears() -> None:
    _, recording, driver = make_call(hold_tts=True)
    driver.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}},
        }
    )
    say(driver)
    created = driver.send({"type": "response.create"})
    response_id = created[0]["response"]["id"]
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=3)
    driver.pump()
    barge = hear(driver, tone(400, rate_hz=CALL_RATE_HZ))
    assert types(barge) == ["input_audio_buffer.speech_started", *RESPONSE_TAIL]
    assert barge[-2]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    commands = recording.playback()
    assert commands[-2:] == [EndOfAudio(response_id), ClearPlayback()]
    item_id = commands[0].item_id
    assert types(clock(driver, PlaybackCleared((PlayedItem(response_id, item_id, 120),)))) == [
        "output_audio_buffer.cleared",
        "conversation.item.truncated",
    ]


def test_played_to_the_end_or_gone_items_are_not_truncated() -> None:
    session, _, driver = make_call()
    _, response_id, item_id = answered(driver)
    entry = session.conversation.get(item_id)
    assert entry is not None
    driver.send({"type": "output_audio_buffer.clear"})
    played = (PlayedItem(response_id, item_id, entry.audio_ms), PlayedItem("resp_x", "item_gone", 5))
    assert clock(driver, PlaybackCleared(played)) == [
        {"type": "output_audio_buffer.cleared", "response_id": response_id}
    ]
    assert clock(driver, PlaybackCleared(())) == []


def test_output_audio_buffer_clear_on_a_call() -> None:
    _, recording, driver = make_call(hold_tts=True)
    # Nothing queued: nothing to clear, no event.
    assert driver.send({"type": "output_audio_buffer.clear"}) == []
    assert recording.playback() == []
    say(driver)
    driver.send({"type": "response.create"})
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=2)
    driver.pump()
    recording.playback()
    # A response still speaking stops with the clear, or its next clause would play after it.
    events = driver.send({"type": "output_audio_buffer.clear", "event_id": "c1"})
    assert types(events) == RESPONSE_TAIL
    assert events[-2]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert recording.playback()[-1] == ClearPlayback()


def test_response_cancel_alone_lets_queued_audio_play_out() -> None:
    _, recording, driver = make_call(hold_tts=True)
    say(driver)
    created = driver.send({"type": "response.create"})
    response_id = created[0]["response"]["id"]
    [clause] = driver.held_tts
    driver.run_tts(clause, chunks=2)
    driver.pump()
    driver.send({"type": "response.cancel"})
    commands = recording.playback()
    assert commands[-1] == EndOfAudio(response_id)
    assert ClearPlayback() not in commands
    assert clock(driver, PlaybackStopped(response_id)) == [
        {"type": "output_audio_buffer.stopped", "response_id": response_id}
    ]


def test_appends_are_refused_on_a_call_and_clear_on_a_websocket() -> None:
    with pytest.raises(ProtocolError, match=r"'input_audio_buffer\.append'"):
        parse_client_event(
            json.dumps({"type": "input_audio_buffer.append", "audio": ""}), SessionKind.REALTIME, call=True
        )
    with pytest.raises(ProtocolError, match=r"'output_audio_buffer\.clear'"):
        parse_client_event(json.dumps({"type": "output_audio_buffer.clear"}), SessionKind.REALTIME)
    # A session that does not play its audio refuses it, should it ever get one.
    session, _, driver = make_call(server_playback=False)
    session.receive(ce.OutputAudioBufferClear(type="output_audio_buffer.clear", event_id="c2"))
    assert driver.pump() == [
        error_event(
            "invalid_value",
            "Invalid value: 'output_audio_buffer.clear'. Not supported on a WebSocket realtime session.",
            "type",
            "c2",
        )
    ]


@pytest.mark.parametrize("update", SDK_UPDATES)
def test_the_agents_sdk_updates_are_accepted_on_a_call(update: dict[str, Any]) -> None:
    _, _, driver = make_call()
    assert types(driver.send({"type": "session.update", "session": update})) == ["session.updated"]


def test_idle_counts_from_the_end_of_playback() -> None:
    session, _, driver = make_call()
    driver.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}},
            },
        }
    )
    _, response_id, _ = answered(driver)
    assert session._idle_from is None  # audio is still playing: no countdown yet
    clock(driver, PlaybackStarted(response_id))
    clock(driver, PlaybackStopped(response_id))
    assert session._idle_from == session.buffer.buffer.end


def test_a_translation_call_plays_its_speech_instead_of_sending_it() -> None:
    import numpy as np

    from openrealtime.session.commands import AudioChunk, Synthesize
    from openrealtime.session.speech_out import PLAYBACK_STREAM, SpeechOut

    speech = SpeechOut(Ids(deterministic=True), server_playback=True)
    speech.add("hola", target="es", voice_language="es", job_id=None)
    [synthesize] = [o for o in speech.advance(0) if isinstance(o, Synthesize)]
    out = speech.on_result(AudioChunk(synthesize.job_id, np.full(2400, 0.1, dtype=np.float32), 24_000), 0)
    assert len(out) == 1
    assert isinstance(out[0], PlayAudio)
    assert (out[0].response_id, out[0].item_id, out[0].samples.size) == (PLAYBACK_STREAM, PLAYBACK_STREAM, 2400)
