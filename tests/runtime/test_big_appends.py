"""Big appends off the event loop (issue 10): a frame's decode, resampling and VAD run in a thread."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

from openrealtime.protocol import server_events as se
from openrealtime.runtime.connection import BIG_FRAME_CHARS
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.commands import AudioIn
from tests.conftest import TIMEOUT_S, pcm, tone
from tests.runtime.test_connection import MemoryTransport, ScriptedSession, manual_turn, run_scripted, start


def append(ms: int) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm(tone(ms))).decode()})


def nothing(_: object) -> tuple[list[se.ServerEvent], list[object]]:
    return [], []


class BlockingSession(ScriptedSession):
    """A session whose handling of a big append lasts until a coroutine on the loop releases it."""

    def __init__(self) -> None:
        super().__init__(nothing)
        self.entered = threading.Event()
        self.released = threading.Event()
        self.released_in_time: bool | None = None
        self.threads: list[int] = []

    def receive(self, event: object) -> None:
        self.threads.append(threading.get_ident())
        if isinstance(event, AudioIn) and len(event.samples) > 24_000:
            self.entered.set()
            # On the loop, this would wait the whole timeout: the coroutine that releases it cannot run.
            self.released_in_time = self.released.wait(TIMEOUT_S)
        super().receive(event)


async def test_the_loop_runs_on_while_a_session_handles_a_big_append() -> None:
    session = BlockingSession()
    transport = MemoryTransport()
    task = run_scripted(session, transport)
    big = append(5_000)
    assert len(big) > BIG_FRAME_CHARS
    await transport.incoming.put(big)
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.to_thread(session.entered.wait)
    session.released.set()  # this coroutine ran while the session was still inside receive
    await transport.incoming.put(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert session.released_in_time is True
    assert session.threads[0] != threading.get_ident()


async def test_small_appends_are_handled_on_the_loop() -> None:
    session = BlockingSession()
    transport = MemoryTransport()
    task = run_scripted(session, transport)
    small = append(100)
    assert len(small) <= BIG_FRAME_CHARS
    for _ in range(3):
        await transport.incoming.put(small)
    await transport.incoming.put(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert session.threads == [threading.get_ident()] * 3
    assert [type(i) for i in session.inputs] == [AudioIn] * 3


async def test_a_big_append_off_the_loop_is_transcribed_as_one_inline(fake_engines: EngineSet) -> None:
    engines = fake_engines
    transport = MemoryTransport()
    task = start(engines, transport)
    for frame in manual_turn(5_000):
        await transport.incoming.put(frame)
    committed = await transport.wait_for("input_audio_buffer.committed")
    done = await transport.wait_for("conversation.item.input_audio_transcription.completed")
    await transport.incoming.put(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert done["item_id"] == committed["item_id"]


async def test_a_bad_big_frame_is_an_error_event_and_the_session_goes_on(fake_engines: EngineSet) -> None:
    engines = fake_engines
    transport = MemoryTransport()
    task = start(engines, transport)
    bad = json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_bad", "audio": "!" * BIG_FRAME_CHARS})
    await transport.incoming.put(bad)
    error = await transport.wait_for("error")
    for frame in manual_turn(200):
        await transport.incoming.put(frame)
    await transport.wait_for("conversation.item.input_audio_transcription.completed")
    await transport.incoming.put(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert error["error"]["event_id"] == "evt_bad"
