"""The runtime over an in-memory transport, with fake engines: ordering, backpressure, failures."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from openrealtime.engines.fake import FakeTranscriber
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.connection import OUTBOX_LIMIT, Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import TIMEOUT_S, pcm, tone


class MemoryTransport:
    """A WebSocket stand-in: the test writes frames in and reads frames out."""

    def __init__(self, *, stall_sends: bool = False) -> None:
        self.incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._stall = stall_sends
        self._new = asyncio.Event()

    async def receive(self) -> str | bytes | None:
        return await self.incoming.get()

    async def send(self, text: str) -> None:
        if self._stall:
            await asyncio.Event().wait()  # a client that never reads
        self.sent.append(json.loads(text))
        self._new.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self._new.set()

    async def wait_for(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                for event in self.sent:
                    if event["type"] == kind:
                        return event
                self._new.clear()
                await self._new.wait()


def session_for(engines: EngineSet) -> TranscriptionSession:
    info = SessionInfo("sess_t", 0, engines.accepts_transcription_model)
    return TranscriptionSession(info, vad=engines.vad)


def start(engines: EngineSet, transport: MemoryTransport, **kwargs: Any) -> asyncio.Task[None]:
    connection = Connection(
        session_for(engines),
        transport,
        SessionKind.TRANSCRIPTION,
        run_job=engines.run_job,
        cancel_job=engines.cancel_job,
        **kwargs,
    )
    return asyncio.create_task(connection.run())


def manual_turn(ms: int) -> list[str]:
    update = {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
        },
    }
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm(tone(ms))).decode()}
    return [json.dumps(update), json.dumps(append), json.dumps({"type": "input_audio_buffer.commit"})]


async def test_inputs_are_handled_in_order_and_the_client_leaving_ends_the_run(
    fake_engines: EngineSet,
) -> None:
    transport = MemoryTransport()
    task = start(fake_engines, transport)
    for frame in manual_turn(1200):
        transport.incoming.put_nowait(frame)
    completed = await transport.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "hello world"
    kinds = [e["type"] for e in transport.sent]
    assert kinds[:3] == ["session.created", "session.updated", "input_audio_buffer.committed"]
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task


async def test_binary_frames_are_errors_not_crashes(fake_engines: EngineSet) -> None:
    transport = MemoryTransport()
    task = start(fake_engines, transport)
    transport.incoming.put_nowait(b"\x01\x02")
    error = await transport.wait_for("error")
    assert error["error"]["code"] == "invalid_event"
    transport.incoming.put_nowait(None)
    await task


async def test_a_client_that_does_not_read_is_closed(fake_engines: EngineSet) -> None:
    transport = MemoryTransport(stall_sends=True)
    task = start(fake_engines, transport)
    for _ in range(OUTBOX_LIMIT + 10):
        transport.incoming.put_nowait("{bad json")
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed == (1008, "client too slow: outbox full")


async def test_an_engine_crash_fails_the_item_and_the_session_goes_on() -> None:
    class Crashing(FakeTranscriber):
        def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
            if audio.size > 16_000 * 2:
                raise RuntimeError("segfault-like surprise")
            return super().transcribe(audio, options)

    from openrealtime.engines.fake import EnergyVad

    engines = EngineSet(vad=EnergyVad(), transcriber=Crashing(), transcriber_name="x")
    try:
        transport = MemoryTransport()
        task = start(engines, transport)
        for frame in manual_turn(2500):
            transport.incoming.put_nowait(frame)
        failed = await transport.wait_for("conversation.item.input_audio_transcription.failed")
        assert "crashed" in failed["error"]["message"]
        for frame in manual_turn(1200)[1:]:
            transport.incoming.put_nowait(frame)
        completed = await transport.wait_for("conversation.item.input_audio_transcription.completed")
        assert completed["transcript"] == "hello world"
        transport.incoming.put_nowait(None)
        await task
    finally:
        engines.close()


async def test_a_bug_in_the_session_closes_with_1011(fake_engines: EngineSet) -> None:
    class Buggy(TranscriptionSession):
        def receive(self, event):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("our bug")

    transport = MemoryTransport()
    session = Buggy(SessionInfo("s", 0, lambda m: True), vad=fake_engines.vad)
    connection = Connection(
        session,
        transport,
        SessionKind.TRANSCRIPTION,
        run_job=fake_engines.run_job,
        cancel_job=fake_engines.cancel_job,
    )
    task = asyncio.create_task(connection.run())
    transport.incoming.put_nowait(json.dumps({"type": "input_audio_buffer.clear"}))
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed == (1011, "internal server error")
    assert all(e["type"] != "error" for e in transport.sent), "a bug must not pose as a client error"


async def test_the_session_expires_with_session_expired_and_1001(fake_engines: EngineSet) -> None:
    transport = MemoryTransport()
    task = start(fake_engines, transport, lifetime_s=0.2)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    error = await transport.wait_for("error")
    assert error["error"]["code"] == "session_expired"
    assert transport.closed == (1001, "Your session hit the maximum duration of 60 minutes.")


@pytest.mark.parametrize("sessions", [6])
async def test_concurrent_connections_share_the_engines(fake_engines: EngineSet, sessions: int) -> None:
    transports = [MemoryTransport() for _ in range(sessions)]
    tasks = [start(fake_engines, t) for t in transports]
    for i, transport in enumerate(transports):
        for frame in manual_turn(600 + 500 * i):
            transport.incoming.put_nowait(frame)
    results = [await t.wait_for("conversation.item.input_audio_transcription.completed") for t in transports]
    assert [len(r["transcript"].split()) for r in results] == [1, 2, 3, 4, 5, 6]
    for transport in transports:
        transport.incoming.put_nowait(None)
    await asyncio.gather(*tasks)


async def test_barge_in_over_the_runtime_sends_no_audio_after_response_done() -> None:
    """The TTS engine keeps producing after the cancel; none of it may reach the client."""
    import threading

    from openrealtime.engines.fake import EnergyVad, FakeChatModel, ToneSynthesizer
    from openrealtime.session.realtime import RealtimeInfo, RealtimeSession

    class SlowTone(ToneSynthesizer):
        """Real-time-ish TTS: one 100 ms chunk every 20 ms, ignoring ``stop`` for a while."""

        def synthesize(self, text, *, voice, stop):  # type: ignore[no-untyped-def]
            for chunk in super().synthesize(text, voice=voice, stop=threading.Event()):
                threading.Event().wait(0.02)
                yield chunk

    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="x",
        chat=FakeChatModel("One two three four five six seven eight nine ten eleven twelve."),
        synthesizers={"en": SlowTone()},
    )
    try:
        transport = MemoryTransport()
        info = RealtimeInfo(base=SessionInfo("s", 0, lambda m: True), model="gpt-realtime")
        connection = Connection(
            RealtimeSession(info, vad=engines.vad),
            transport,
            SessionKind.REALTIME,
            run_job=engines.run_job,
            cancel_job=engines.cancel_job,
        )
        task = asyncio.create_task(connection.run())
        transport.incoming.put_nowait(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Count."}]},
                }
            )
        )
        transport.incoming.put_nowait(json.dumps({"type": "response.create"}))
        await transport.wait_for("response.output_audio.delta")
        speech = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm(tone(300))).decode()})
        transport.incoming.put_nowait(speech)
        done = await transport.wait_for("response.done")
        assert done["response"]["status"] == "cancelled"
        await asyncio.sleep(0.3)  # let the TTS thread run on: its late chunks must be dropped
        kinds = [e["type"] for e in transport.sent]
        after = kinds[kinds.index("response.done") :]
        assert "response.output_audio.delta" not in after
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
        transport.incoming.put_nowait(None)
        await task
    finally:
        engines.close()
