"""A closed connection's session is freed by reference counting alone, never left to the cyclic
garbage collector (issue 10: seven 300 MB sessions in turn left +1.5 GB until a collection)."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime import connection as connection_module
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.ports import Session
from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import TIMEOUT_S, pcm, tone
from tests.runtime.test_connection import MemoryTransport, ScriptedSession


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("Hello there, friend. " * 10),
        synthesizers={"en": ToneSynthesizer()},
    )
    yield engines
    engines.close()


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def spoken_turn() -> str:
    samples = np.concatenate([tone(600), np.zeros(24 * 1000, dtype=np.float32)])
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm(samples)).decode()})


async def served(
    session: Session, kind: SessionKind, engines: EngineSet, frames: list[str], until: str
) -> weakref.ref[object]:
    """Serve ``frames`` until an ``until`` event, then the client leaves; a weak reference to the session."""
    transport = MemoryTransport()
    ref: weakref.ref[object] = weakref.ref(session)
    connection = Connection(
        session, transport, kind, run_job=engines.run_job, cancel_job=engines.cancel_job, lifetime_s=3600
    )
    del session
    task = asyncio.create_task(connection.run())
    del connection
    for frame in frames:
        transport.incoming.put_nowait(frame)
    await transport.wait_for(until)
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    del task
    await released(ref)
    return ref


async def released(ref: weakref.ref[object]) -> None:
    """Until ``ref`` dies, by reference counting alone (the cyclic collector is off): a frame over
    ``BIG_FRAME_CHARS`` is parsed in a worker thread, which drops its work item a moment after the
    session loop has gone on."""
    async with asyncio.timeout(1.0):
        while ref() is not None:  # noqa: ASYNC110 - a worker thread lets go, there is nothing to await
            await asyncio.sleep(0.01)


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_realtime_session_with_a_spoken_turn_and_a_response_is_freed_when_it_closes(
    engines: EngineSet,
) -> None:
    info = RealtimeInfo(base=SessionInfo("sess_r", 0, lambda model: True), model="gpt-realtime")
    ref = await served(
        RealtimeSession(info, vad=engines.vad), SessionKind.REALTIME, engines, [spoken_turn()], "response.done"
    )
    assert ref() is None


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_transcription_session_is_freed_when_it_closes(engines: EngineSet) -> None:
    update = {
        "type": "session.update",
        "session": {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
    }
    info = SessionInfo("sess_t", 0, engines.accepts_transcription_model)
    frames = [json.dumps(update), spoken_turn()]
    ref = await served(
        TranscriptionSession(info, vad=engines.vad),
        SessionKind.TRANSCRIPTION,
        engines,
        frames,
        "conversation.item.input_audio_transcription.completed",
    )
    assert ref() is None


@pytest.mark.usefixtures("no_cyclic_gc")
async def test_a_session_that_crashed_with_1011_is_freed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task group's exception group and its traceback's frames are a cycle holding the connection.
    (The log is off: pytest's capture would keep the record, its exception and so the session.)"""
    monkeypatch.setattr(connection_module.log, "disabled", True)

    def crash(value: object) -> tuple[list[se.ServerEvent], list[object]]:
        raise RuntimeError("a bug in the session")

    transport = MemoryTransport()
    session = ScriptedSession(crash)
    ref = weakref.ref(session)
    connection = Connection(
        session,  # type: ignore[arg-type]
        transport,
        SessionKind.TRANSCRIPTION,
        run_job=lambda c: None,
        cancel_job=lambda _: None,
    )
    del session
    task = asyncio.create_task(connection.run())
    del connection
    transport.incoming.put_nowait(json.dumps({"type": "input_audio_buffer.clear"}))
    async with asyncio.timeout(TIMEOUT_S):
        await task
    del task
    assert transport.closed is not None
    assert transport.closed[0] == 1011
    assert ref() is None
