"""The runtime over an in-memory transport, with fake engines: ordering, backpressure, failures."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from openrealtime.audio.codec import AudioFormat
from openrealtime.engines.fake import FakeTranscriber
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, dump_server_event
from openrealtime.runtime import loop_share
from openrealtime.runtime import outbox as outbox_module
from openrealtime.runtime.backlog import BACKLOG_CODE, MAX_PENDING_TRANSCRIPTIONS
from openrealtime.runtime.connection import (
    INBOX_LIMIT,
    INBOX_LIMIT_BYTES,
    RESULTS_LIMIT,
    Connection,
)
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.loop_share import SHARE
from openrealtime.runtime.outbox import OUTBOX_LIMIT
from openrealtime.runtime.ports import close_reason, session_expired_message, session_idle_message
from openrealtime.runtime.scheduler import bulk_work
from openrealtime.session.commands import CloseConnection, TextTranslated
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from tests.conftest import TIMEOUT_S, pcm, tone


async def test_a_burst_of_inputs_lets_every_other_task_run_between_slices(
    fake_engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue with items never suspends its getter: the session loop took a whole burst without
    letting another connection or /healthz run (692 ms of /healthz under bursts of 2,000 items). With
    a slice of 0 it yields after every input, so a task that counts its turns gets one per item."""
    monkeypatch.setattr(SHARE, "round_s", 0.0)
    monkeypatch.setattr(loop_share, "MIN_SLICE_S", 0.0)
    transport = MemoryTransport()
    items = 300
    for frame in item_burst(items):
        transport.incoming.put_nowait(frame)
    transport.incoming.put_nowait(None)
    turns = 0
    done = asyncio.Event()

    async def other_task() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    async with asyncio.timeout(TIMEOUT_S):
        await start_realtime(fake_engines, transport)
    done.set()
    await other
    assert sum(e["type"] == "conversation.item.done" for e in transport.sent) == items
    assert turns >= items  # before: a handful, one each time the inbox ran dry


async def test_sessions_behind_share_one_slice_of_the_loop_and_leave_it_when_caught_up(
    fake_engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two connections bursting at once each work half a slice before yielding (one slice each made
    every turn of the loop two slices long: /healthz 55-65 ms p99 under bursts); once their inboxes
    are empty they no longer count, and a session alone gets the whole slice again."""
    monkeypatch.setattr(SHARE, "round_s", 0.0002)
    monkeypatch.setattr(loop_share, "MIN_SLICE_S", 0.0)
    seen: set[int] = set()

    async def watch() -> None:
        while True:
            seen.add(SHARE.behind)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    transports = [MemoryTransport(), MemoryTransport()]
    for transport in transports:
        for frame in item_burst(400):
            transport.incoming.put_nowait(frame)
        transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(*(start_realtime(fake_engines, t) for t in transports))
    watcher.cancel()
    assert 2 in seen  # both were behind at once, so each worked half the round
    assert SHARE.behind == 0
    assert SHARE.slice_s() == SHARE.round_s


def test_the_slice_is_the_round_shared_by_the_sessions_behind() -> None:
    share = loop_share.LoopShare(round_s=0.004)
    assert share.slice_s() == 0.004
    share.behind = 4
    assert share.slice_s() == 0.001
    share.behind = 1000
    assert share.slice_s() == loop_share.MIN_SLICE_S


CLEAR = json.dumps({"type": "input_audio_buffer.clear"})


class MemoryTransport:
    """A WebSocket stand-in: the test writes frames in and reads frames out."""

    def __init__(self, *, stall_sends: bool = False, fail_sends: bool = False) -> None:
        self.incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._stall = stall_sends
        self._fail = fail_sends
        self._new = asyncio.Event()

    async def receive(self) -> str | bytes | None:
        return await self.incoming.get()

    async def send(self, text: str) -> None:
        if self._fail:
            raise ConnectionResetError("the client vanished")
        if self._stall:
            await asyncio.Event().wait()  # a client that never reads
        self.sent.append(json.loads(text))
        self._new.set()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self._new.set()

    async def wait_count(self, kind: str, count: int) -> None:
        """Until ``count`` events of type ``kind`` have been sent."""
        async with asyncio.timeout(TIMEOUT_S):
            while sum(e["type"] == kind for e in self.sent) < count:
                self._new.clear()
                await self._new.wait()

    async def wait_for(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                for event in self.sent:
                    if event["type"] == kind:
                        return event
                self._new.clear()
                await self._new.wait()


class SocketTransport(MemoryTransport):
    """A client that reads as fast as it can (``read_all``) through a socket that holds one frame: a
    send waits until the client has taken the frame before it, as a real socket's full buffer does."""

    def __init__(self) -> None:
        super().__init__()
        self.socket: asyncio.Queue[str] = asyncio.Queue(maxsize=1)

    async def send(self, text: str) -> None:
        await self.socket.put(text)

    async def read_all(self) -> None:
        while True:
            await super().send(await self.socket.get())


@dataclass(frozen=True)
class StartJob:
    job_id: str


class ScriptedSession:
    """The runtime's side of the session contract, and nothing else: each input is recorded, and
    ``script`` says what it produces (server events, commands)."""

    def __init__(self, script: Callable[[object], tuple[list[se.ServerEvent], list[object]]]) -> None:
        self.inputs: list[object] = []
        self._script = script
        self._events: list[se.ServerEvent] = []
        self._commands: list[object] = []

    def _take(self, value: object) -> None:
        self.inputs.append(value)
        events, commands = self._script(value)
        self._events += events
        self._commands += commands

    input_format = AudioFormat.PCM

    def receive(self, event: object) -> None:
        self._take(event)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        self._take(exc)

    def on_result(self, result: object) -> None:
        self._take(result)

    def drain(self) -> tuple[list[se.ServerEvent], list[object]]:
        out = (self._events, self._commands)
        self._events, self._commands = [], []
        return out


def run_scripted(
    session: ScriptedSession,
    transport: MemoryTransport,
    run_job: Callable[[object], AsyncIterator[object] | None] = lambda command: None,
) -> asyncio.Task[None]:
    connection = Connection(session, transport, SessionKind.TRANSCRIPTION, run_job=run_job, cancel_job=lambda _: None)
    return asyncio.create_task(connection.run())


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


async def test_a_client_that_does_not_read_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "SEND_STALL_TIMEOUT_S", TIMEOUT_S / 100)
    session = ScriptedSession(lambda _: ([se.Cleared()] * (OUTBOX_LIMIT + 1), []))
    transport = MemoryTransport(stall_sends=True)
    task = run_scripted(session, transport)
    transport.incoming.put_nowait(CLEAR)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed == (1008, "client too slow: outbox full")


BURST_ITEMS = 2000  # what our own client sends when it rebuilds a conversation's history


def item_burst(items: int) -> list[str]:
    message = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi."}]}
    return [json.dumps({"type": "conversation.item.create", "item": message}) for _ in range(items)]


def start_realtime(engines: EngineSet, transport: MemoryTransport) -> asyncio.Task[None]:
    from openrealtime.session.realtime import RealtimeInfo, RealtimeSession

    info = RealtimeInfo(base=SessionInfo("s", 0, lambda m: True), model="gpt-realtime")
    connection = Connection(
        RealtimeSession(info, vad=engines.vad),
        transport,
        SessionKind.REALTIME,
        run_job=engines.run_job,
        cancel_job=engines.cancel_job,
    )
    return asyncio.create_task(connection.run())


async def test_a_client_that_reads_as_fast_as_it_can_gets_every_event_of_a_burst(fake_engines: EngineSet) -> None:
    """Issue 10 defect 7: the burst's 4,000 events overrun the outbox unless the writer runs between inputs."""
    transport = SocketTransport()
    for frame in item_burst(BURST_ITEMS):
        transport.incoming.put_nowait(frame)
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
        reading = tg.create_task(transport.read_all())
        await start_realtime(fake_engines, transport)
        reading.cancel()
    assert transport.closed == (1000, "")
    kinds = [e["type"] for e in transport.sent]
    assert kinds == ["session.created"] + ["conversation.item.added", "conversation.item.done"] * BURST_ITEMS


async def test_a_client_that_sends_a_burst_and_does_not_read_is_closed(
    fake_engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "SEND_STALL_TIMEOUT_S", TIMEOUT_S / 100)
    transport = MemoryTransport(stall_sends=True)
    for frame in item_burst(BURST_ITEMS):
        transport.incoming.put_nowait(frame)
    async with asyncio.timeout(TIMEOUT_S):
        await start_realtime(fake_engines, transport)
    assert transport.closed == (1008, "client too slow: outbox full")


@pytest.mark.parametrize(
    ("sizes", "taken"),
    [
        ([1] * (INBOX_LIMIT + 10), INBOX_LIMIT + 1),
        ([INBOX_LIMIT_BYTES + 1, 1, 1], 2),
        ([INBOX_LIMIT_BYTES // 2, INBOX_LIMIT_BYTES // 2, 1, 1], 3),
        ([INBOX_LIMIT_BYTES // 2, INBOX_LIMIT_BYTES // 2 + 1, 1], 2),
    ],
    ids=["frames", "one-frame-over-alone", "bytes-at-the-limit", "bytes-one-over"],
)
async def test_a_client_that_sends_faster_than_its_session_handles_waits_for_room(sizes: list[int], taken: int) -> None:
    """All frames are sent before the session handles the first: the reader takes what the inbox holds
    (in frames and in bytes) plus the one in its hand, the rest wait in the client's socket, and every
    frame is handled in the end. A frame too large to queue behind another gets in alone."""
    in_socket: list[int] = []

    def script(value: object) -> tuple[list[se.ServerEvent], list[object]]:
        in_socket.append(transport.incoming.qsize() - 1)  # less the client's goodbye
        return [], []

    session = ScriptedSession(script)
    transport = MemoryTransport()
    for size in sizes:
        transport.incoming.put_nowait(b"\0" * size)
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await run_scripted(session, transport)
    assert transport.closed == (1000, "")
    assert [type(i) for i in session.inputs] == [ProtocolError] * len(sizes)
    assert in_socket[0] == len(sizes) - taken


@pytest.mark.parametrize("event_chars", [1000, 5000], ids=["several-fit", "each-over-the-limit-alone"])
async def test_the_outbox_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch, event_chars: int) -> None:
    """Issue 10 defect 6: what a client asks for (``conversation.item.retrieve`` of a large item) is
    held to ``OUTBOX_LIMIT_BYTES``; the client still gets every event, and one event always gets in."""
    limit = 4000
    monkeypatch.setattr(outbox_module, "OUTBOX_LIMIT_BYTES", limit)
    big = se.ItemRetrieved(item={"id": "item_1", "type": "message", "text": "x" * event_chars})
    session = ScriptedSession(lambda _: ([big] * 20, []))
    transport = SocketTransport()
    connection = Connection(
        session, transport, SessionKind.TRANSCRIPTION, run_job=lambda c: None, cancel_job=lambda j: None
    )
    held: list[int] = []

    async def client() -> None:
        while True:
            held.append(connection.outbox_chars)
            await MemoryTransport.send(transport, await transport.socket.get())

    transport.incoming.put_nowait(CLEAR)
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
        reading = tg.create_task(client())
        await connection.run()
        reading.cancel()
    assert transport.closed == (1000, "")
    assert sum(e["type"] == "conversation.item.retrieved" for e in transport.sent) == 20
    one_event = len(dump_server_event(big))
    assert max(held) <= max(limit, one_event)  # unbounded in bytes, it would hold all 20


async def test_audio_faster_than_transcription_is_refused_beyond_a_bound_per_session() -> None:
    """Issue 10 defect 4: with the ASR held, 12 committed turns leave at most
    ``MAX_PENDING_TRANSCRIPTIONS`` decodes waiting; the rest fail at once with
    ``transcription_backlog_full``, after one ``error``; released, the waiting ones complete."""
    import threading

    from openrealtime.engines.fake import EnergyVad

    gate = threading.Event()

    class Held(FakeTranscriber):
        def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
            gate.wait(TIMEOUT_S)
            return super().transcribe(audio, options)

    turns = 12
    engines = EngineSet(vad=EnergyVad(), transcriber=Held(), transcriber_name="x")
    try:
        transport = MemoryTransport()
        task = start(engines, transport)
        update, append, commit = manual_turn(600)
        transport.incoming.put_nowait(update)
        for _ in range(turns):
            transport.incoming.put_nowait(append)
            transport.incoming.put_nowait(commit)
        refused = turns - MAX_PENDING_TRANSCRIPTIONS
        await transport.wait_count("conversation.item.input_audio_transcription.failed", refused)
        gate.set()
        await transport.wait_count("conversation.item.input_audio_transcription.completed", turns - refused)
        transport.incoming.put_nowait(None)
        await task
    finally:
        gate.set()
        engines.close()
    kinds = [e["type"] for e in transport.sent]
    assert kinds.count("conversation.item.input_audio_transcription.completed") == MAX_PENDING_TRANSCRIPTIONS
    assert kinds.count("conversation.item.input_audio_transcription.failed") == refused
    [error] = [e for e in transport.sent if e["type"] == "error"]
    assert error["error"]["code"] == BACKLOG_CODE
    failed = [e for e in transport.sent if e["type"].endswith("transcription.failed")]
    assert {f["error"]["code"] for f in failed} == {BACKLOG_CODE}
    assert kinds.index("error") < kinds.index("conversation.item.input_audio_transcription.failed")


async def test_a_sender_far_ahead_of_real_time_is_paced_by_its_decodes_and_loses_nothing() -> None:
    """Issue 10 flood B: a client that sends 2 s turns as fast as it can, with the ASR held: once it
    runs past the bulk lead with two decodes waiting, its connection stops reading (its frames wait in
    its socket), instead of refusing turns; released, every turn is transcribed."""
    import threading

    from openrealtime.engines.fake import EnergyVad

    gate = threading.Event()

    class Held(FakeTranscriber):
        def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
            gate.wait(TIMEOUT_S)
            return super().transcribe(audio, options)

    turns = 8
    engines = EngineSet(vad=EnergyVad(), transcriber=Held(), transcriber_name="x")
    try:
        transport = MemoryTransport()
        task = start(engines, transport)
        update, append, commit = manual_turn(2000)
        transport.incoming.put_nowait(update)
        for _ in range(turns):
            transport.incoming.put_nowait(append)
            transport.incoming.put_nowait(commit)
            await asyncio.sleep(0.02)  # the session handles each turn as it comes
        await asyncio.sleep(0.2)
        unread = transport.incoming.qsize()
        gate.set()
        await transport.wait_count("conversation.item.input_audio_transcription.completed", turns)
        transport.incoming.put_nowait(None)
        await task
    finally:
        gate.set()
        engines.close()
    assert unread > 0  # paced: the connection stopped reading while its decodes waited
    kinds = [e["type"] for e in transport.sent]
    assert "conversation.item.input_audio_transcription.failed" not in kinds
    assert "error" not in kinds


async def test_engine_results_are_never_crowded_out_by_a_flooding_client_nor_dropped() -> None:
    """A job's results have their own room: when it is full the job waits, and nothing is lost."""
    results = 2 * RESULTS_LIMIT + 1
    started, release, all_handled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    produced = 0
    lag: list[int] = []  # results produced but not yet handled, seen at each one handled

    async def job() -> AsyncIterator[object]:
        nonlocal produced
        started.set()
        await release.wait()
        for n in range(results):
            produced += 1
            yield TextTranslated("job_1", str(n))

    def script(value: object) -> tuple[list[se.ServerEvent], list[object]]:
        if isinstance(value, TextTranslated):
            n = int(value.text)
            lag.append(produced - n - 1)
            if n == results - 1:
                all_handled.set()
            return [], []
        return [], [StartJob("job_1")] if len(session.inputs) == 1 else []

    session = ScriptedSession(script)
    transport = MemoryTransport()
    task = run_scripted(session, transport, run_job=lambda command: job())
    transport.incoming.put_nowait(CLEAR)
    async with asyncio.timeout(TIMEOUT_S):
        await started.wait()
        release.set()  # the job fills its room first, then the client sends all the frames the inbox takes
        for _ in range(INBOX_LIMIT):
            transport.incoming.put_nowait(CLEAR)
        await all_handled.wait()
        transport.incoming.put_nowait(None)
        await task
    assert transport.closed == (1000, "")
    assert [int(i.text) for i in session.inputs if isinstance(i, TextTranslated)] == list(range(results))
    assert sum(isinstance(i, ce.InputAudioBufferClear) for i in session.inputs) == INBOX_LIMIT + 1
    assert max(lag) == RESULTS_LIMIT  # the job waited for room, with one result in hand


async def test_a_session_close_waits_behind_a_full_outbox_and_is_never_dropped() -> None:
    """``session.close`` -> ``session.closed``, then 1000: the close frame waits for room, in order."""
    session = ScriptedSession(lambda _: ([se.Cleared()] * OUTBOX_LIMIT, [CloseConnection(1000, "")]))
    transport = MemoryTransport()
    task = run_scripted(session, transport)
    transport.incoming.put_nowait(CLEAR)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.sent == [{"type": "input_audio_buffer.cleared", "event_id": e["event_id"]} for e in transport.sent]
    assert len(transport.sent) == OUTBOX_LIMIT
    assert transport.closed == (1000, "")


async def test_a_client_that_stops_reading_while_we_say_goodbye_is_closed_with_1008(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox_module, "DRAIN_TIMEOUT_S", TIMEOUT_S / 100)
    session = ScriptedSession(lambda _: ([se.Cleared()], [CloseConnection(1000, "")]))
    transport = MemoryTransport(stall_sends=True)
    task = run_scripted(session, transport)
    transport.incoming.put_nowait(CLEAR)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed == (1008, "client too slow")


async def test_a_failed_send_ends_the_run_without_a_goodbye() -> None:
    session = ScriptedSession(lambda _: ([se.Cleared()], []))
    transport = MemoryTransport(fail_sends=True)
    task = run_scripted(session, transport)
    transport.incoming.put_nowait(CLEAR)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert transport.closed is None
    assert transport.sent == []


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
    assert error["error"]["message"] == "Your session hit the maximum duration of 0.2 seconds."
    assert transport.closed == (1001, error["error"]["message"])


async def test_a_session_where_nobody_speaks_is_closed_after_the_idle_timeout(fake_engines: EngineSet) -> None:
    """Each frame either way restarts the idle clock; past it, an ``error`` and close 1001."""
    transport = MemoryTransport()
    task = start(fake_engines, transport, idle_timeout_s=0.3)
    await transport.wait_for("session.created")
    await asyncio.sleep(0.2)
    last_frame = time.monotonic()
    transport.incoming.put_nowait(json.dumps({"type": "input_audio_buffer.clear"}))  # still here
    async with asyncio.timeout(TIMEOUT_S):
        await task
    closed_after = time.monotonic() - last_frame
    error = await transport.wait_for("error")
    assert error["error"]["code"] == "session_idle_timeout"
    assert error["error"]["message"] == session_idle_message(0.3)
    assert transport.closed == (1001, error["error"]["message"])
    assert closed_after >= 0.25  # counted from the client's last frame (and the server's answer to it)


def test_a_close_reason_fits_a_close_frame() -> None:
    assert close_reason("short") == "short"
    long = "é" * 100  # 200 bytes
    assert len(close_reason(long).encode()) <= 123
    assert close_reason(long).endswith("...")


@pytest.mark.parametrize(
    ("lifetime_s", "duration"),
    [(3600, "60 minutes"), (60, "1 minute"), (1800, "30 minutes"), (90, "90 seconds"), (1, "1 second")],
)
def test_the_expiry_message_says_the_real_lifetime(lifetime_s: float, duration: str) -> None:
    assert session_expired_message(lifetime_s) == f"Your session hit the maximum duration of {duration}."


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

    class SlowTone(ToneSynthesizer):
        """Real-time-ish TTS: one 100 ms chunk every 20 ms, ignoring ``stop`` for a while."""

        def synthesize(self, text, *, voice, stop, speed=1.0):  # type: ignore[no-untyped-def]
            for chunk in super().synthesize(text, voice=voice, stop=threading.Event(), speed=speed):
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
        task = start_realtime(engines, transport)
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


async def test_a_flooding_session_does_not_hold_up_another_sessions_answer() -> None:
    """Issue 10 defect 3 over fakes: one session asks for 40 out-of-band answers that never end; it
    gets ``MAX_RESPONSES_IN_FLIGHT`` of them and errors for the rest, and another session sharing the
    engine threads is answered meanwhile (before, the flood held every thread and queued the rest
    ahead of it)."""
    import threading

    from openrealtime.engines.fake import EnergyVad, FakeChatModel
    from openrealtime.runtime.scheduler import FairExecutor
    from openrealtime.session.responding import MAX_RESPONSES_IN_FLIGHT

    gate = threading.Event()

    class Stalling(FakeChatModel):
        def chat(self, request, stop):  # type: ignore[no-untyped-def]
            if "flood" in str(request.messages):
                gate.wait(TIMEOUT_S)
            return super().chat(request, stop)

    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="x",
        chat=Stalling(),
        stream_pool=FairExecutor("test", threads=4),
    )
    flooder, victim = MemoryTransport(), MemoryTransport()
    flood = 40
    try:
        tasks = [start_realtime(engines, flooder), start_realtime(engines, victim)]
        for transport, text, asks in ((flooder, "flood", flood), (victim, "question", 1)):
            transport.incoming.put_nowait(item_burst(1)[0].replace("Hi.", text))
            for _ in range(asks):
                transport.incoming.put_nowait(
                    json.dumps(
                        {
                            "type": "response.create",
                            "response": {"conversation": "none", "output_modalities": ["text"]},
                        }
                    )
                )
            if transport is flooder:
                await flooder.wait_count("error", flood - MAX_RESPONSES_IN_FLIGHT)
        done = await victim.wait_for("response.done")
        assert done["response"]["status"] == "completed", done
        assert not gate.is_set()  # answered while the flood still holds its threads
        assert {e["error"]["code"] for e in flooder.sent if e["type"] == "error"} == {"too_many_active_responses"}
        gate.set()
        await flooder.wait_count("response.done", MAX_RESPONSES_IN_FLIGHT)
        for transport in (flooder, victim):
            transport.incoming.put_nowait(None)
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*tasks)
    finally:
        gate.set()
        engines.close()


@pytest.mark.parametrize(("turn_ms", "bulk"), [(2000, False), (9000, True)])
async def test_decodes_of_audio_sent_faster_than_real_time_are_bulk_work(
    fake_engines: EngineSet, turn_ms: int, bulk: bool
) -> None:
    """A question sent in one append is live work; nine seconds sent at once (faster than anyone
    speaks) are decoded as bulk work, which never takes the ASR's last free thread."""
    seen: list[bool] = []

    def run_job(command: object) -> AsyncIterator[object] | None:
        results = fake_engines.run_job(command)

        async def watched() -> AsyncIterator[object]:
            seen.append(bulk_work.get())
            assert results is not None
            async for result in results:
                yield result

        return watched() if results is not None else None

    transport = MemoryTransport()
    connection = Connection(
        session_for(fake_engines), transport, SessionKind.TRANSCRIPTION, run_job=run_job, cancel_job=lambda _: None
    )
    task = asyncio.create_task(connection.run())
    for frame in manual_turn(turn_ms):
        transport.incoming.put_nowait(frame)
    await transport.wait_for("conversation.item.input_audio_transcription.completed")
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
    assert seen
    assert set(seen) == {bulk}  # every decode of the turn
