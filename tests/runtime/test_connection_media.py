"""A connection with a media port (a WebRTC call), over an in-memory transport and fake engines: input
audio through post_audio (bounded, dropped past its share), PlayAudio to the port, a clear answered
through the inbox, and a media-less connection refusing playback commands as the bug it would be."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime import call_media
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.commands import PlayAudio, PlaybackCleared, PlaybackStarted, PlayedItem
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.runtime.test_connection import MemoryTransport

RATE_HZ = 48_000


class RecordingPort:
    """A media port that records what it is told and clears as a track would."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.played: list[PlayAudio] = []
        self.ended: list[str] = []
        self.clears = 0

    def attach(self, connection: Connection) -> None:
        self.connection = connection

    def play(self, command: PlayAudio) -> None:
        self.played.append(command)

    def end(self, response_id: str) -> None:
        self.ended.append(response_id)

    def clear(self) -> PlaybackCleared:
        self.clears += 1
        first = self.played[0]
        return PlaybackCleared((PlayedItem(first.response_id, first.item_id, 100),))


@pytest.fixture
def engines() -> Any:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("Hello there."),
        synthesizers={"en": voice, "*": voice},
    )
    yield engines
    engines.close()


def call_session(*, server_playback: bool = True) -> RealtimeSession:
    base = SessionInfo(session_id="sess_1", created_at_s=1_000, accepts_model=lambda m: True)
    info = RealtimeInfo(base=base, model="gpt-realtime", server_playback=server_playback)
    return RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))


def connection(engines: EngineSet, transport: MemoryTransport, port: Any) -> Connection:
    return Connection(
        call_session(server_playback=port is not None),
        transport,
        SessionKind.REALTIME,
        run_job=engines.run_job,
        cancel_job=engines.cancel_job,
        media=port,
    )


async def test_call_audio_makes_a_turn_whose_answer_goes_to_the_port(engines: EngineSet) -> None:
    transport, port = MemoryTransport(), RecordingPort()
    conn = connection(engines, transport, port)
    assert port.connection is conn
    task = asyncio.get_running_loop().create_task(conn.run())
    audio = np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)])
    for start in range(0, audio.size, RATE_HZ // 10):
        assert conn.post_audio(audio[start : start + RATE_HZ // 10], RATE_HZ)
    done = await transport.wait_for("response.done")
    assert "response.output_audio.delta" not in [e["type"] for e in transport.sent]
    response_id = done["response"]["id"]
    assert port.played
    assert {p.response_id for p in port.played} == {response_id}
    assert port.ended == [response_id]
    conn.post_playback(PlaybackStarted(response_id))
    await transport.wait_for("output_audio_buffer.started")
    # The caller speaks over it: the port is cleared, and what it says was played comes back.
    for _ in range(5):
        conn.post_audio(tone(100, rate_hz=RATE_HZ), RATE_HZ)
    truncated = await transport.wait_for("conversation.item.truncated")
    assert truncated["audio_end_ms"] == 100
    assert port.clears == 1
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task


async def test_call_audio_past_its_share_is_dropped(engines: EngineSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(call_media, "MEDIA_AUDIO_LIMIT", 2)
    transport, port = MemoryTransport(), RecordingPort()
    conn = connection(engines, transport, port)  # not running: nothing takes the audio
    chunk = quiet(100, rate_hz=RATE_HZ)
    assert [conn.post_audio(chunk, RATE_HZ) for _ in range(3)] == [True, True, False]
    assert conn.media_dropped_s == pytest.approx(0.1)


async def test_playback_commands_without_media_are_a_bug(engines: EngineSet) -> None:
    transport = MemoryTransport()
    conn = Connection(
        call_session(server_playback=True),  # a session that plays its audio, on a plain WebSocket
        transport,
        SessionKind.REALTIME,
        run_job=engines.run_job,
        cancel_job=engines.cancel_job,
    )
    task = asyncio.get_running_loop().create_task(conn.run())
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    transport.incoming.put_nowait(json.dumps({"type": "conversation.item.create", "item": item}))
    transport.incoming.put_nowait(json.dumps({"type": "response.create"}))
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed == (1011, "internal server error")


def test_the_pacer_paces_a_speech_from_when_the_call_started_playing_it() -> None:
    from openrealtime.runtime.pacing import SpeechPacer

    now = [0.0]
    pacer = SpeechPacer(5.0, clock=lambda: now[0])
    assert pacer.delay_s("resp_1", 0) == 0  # its first clause, at 0 s
    now[0] = 3.0  # other audio played first: the caller starts hearing it only now
    pacer.heard("resp_1")
    assert pacer.delay_s("resp_1", 9_000) == pytest.approx(4.0)  # 3 + 9 - 5 - 3, not 0 + 9 - 5 - 3
    pacer.heard("resp_unknown")  # a speech it never paced: nothing to move
    assert pacer.delay_s("resp_unknown", 0) == 0


async def test_a_full_buffer_is_told_once_and_takes_audio_again_after_a_commit(
    engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrealtime.session import input_buffer

    monkeypatch.setattr(input_buffer, "MAX_BUFFER_S", 1)
    transport, port = MemoryTransport(), RecordingPort()
    conn = connection(engines, transport, port)
    task = asyncio.get_running_loop().create_task(conn.run())
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    transport.incoming.put_nowait(json.dumps(update))
    await transport.wait_for("session.updated")
    for _ in range(25):  # 2.5 s of a microphone that never stops, into a 1 s buffer
        conn.post_audio(tone(100, rate_hz=RATE_HZ), RATE_HZ)
    error = await transport.wait_for("error")
    assert error["error"]["code"] == "input_audio_buffer_full"
    transport.incoming.put_nowait(json.dumps({"type": "input_audio_buffer.clear"}))
    await transport.wait_for("input_audio_buffer.cleared")
    assert sum(e["type"] == "error" for e in transport.sent) == 1  # once, not once per chunk
    assert conn.media_dropped_s > 1
    for _ in range(25):  # taken again after the clear, and told again once when full again
        conn.post_audio(tone(100, rate_hz=RATE_HZ), RATE_HZ)
    await transport.wait_count("error", 2)
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert sum(e["type"] == "error" for e in transport.sent) == 2
