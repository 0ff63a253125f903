"""Drive one sans-I/O session over one WebSocket transport.

One ``asyncio.TaskGroup`` per connection: a reader, the session loop (the only code that touches the
session, handling inputs strictly in arrival order), a writer with a bounded outbox, and one job task
per command id. Nothing is ordered by ``sleep``; late engine results are dropped by the session by id.
A large client frame (``BIG_FRAME_CHARS``) is decoded and handed to the session in a worker thread
that the session loop awaits, so the session is still touched by one task at a time.

Both queues are bounded, and who may wait on them is decided per producer:

- the inbox holds at most ``INBOX_LIMIT`` client frames (and ``INBOX_LIMIT_BYTES``). When it is full
  the reader waits for room: the client's next frames wait in its own socket, and TCP slows it down
  (websockets' own flow control, not a close). Engine results have their own ``RESULTS_LIMIT`` slots,
  so a flooding client can never crowd them out; a job whose results are not taken yet waits for a
  slot (backpressure on our own engine, never a drop). The few control inputs (client gone, send
  failed, expiry) always get in.
- the outbox (:mod:`~openrealtime.runtime.outbox`) holds ``OUTBOX_LIMIT`` events and
  ``OUTBOX_LIMIT_BYTES``. When it is full the session loop waits for the writer before it queues
  more, so a client that reads as fast as it can gets every event of a burst (the loop would
  otherwise handle every queued input before the writer ran once). A client that takes no event for
  ``SEND_STALL_TIMEOUT_S`` does not read: it is closed with 1008. The closing frame waits its turn
  behind a full outbox for up to ``DRAIN_TIMEOUT_S``, so a session's own close (``session.close``
  -> 1000) is never dropped.

Transcription work is bounded per connection, and a client far ahead of real time is paced by it
(:mod:`~openrealtime.runtime.backlog`).

A WebRTC call (:mod:`openrealtime.webrtc`) drives its session through the same connection, with its
data channel as the transport and a :class:`MediaPort` for the audio
(:mod:`~openrealtime.runtime.call_media`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, dump_server_event
from openrealtime.runtime.backlog import TranscriptionBacklog
from openrealtime.runtime.call_media import (
    BUFFER_FULL_CODE,
    MEDIA_AUDIO_LIMIT,
    PLAYBACK_LIMIT,
    RESUMES_MEDIA,
    CallMedia,
    MediaAudio,
)
from openrealtime.runtime.engine_jobs import EngineJobs
from openrealtime.runtime.loop_share import SHARE
from openrealtime.runtime.outbox import CLOSE_NORMAL, CLOSE_TOO_SLOW, Outbox
from openrealtime.runtime.pacing import SpeechPacer
from openrealtime.runtime.ports import (
    MediaPort,
    Session,
    Transport,
    session_expired_message,
    session_idle_message,
)
from openrealtime.runtime.scheduler import current_session
from openrealtime.runtime.wire import ClientFrames
from openrealtime.session.commands import (
    PLAYBACK_TYPES,
    RESULT_TYPES,
    AudioIn,
    CancelJob,
    ClearPlayback,
    CloseConnection,
    EndOfAudio,
    HoldPlayback,
    PlayAudio,
    PlaybackStarted,
)

log = logging.getLogger(__name__)


INBOX_LIMIT = 256  # client frames waiting for the session before the reader waits for room
# Queued client frames in characters (JSON is ASCII): two of the largest frames the server lets in. One
# frame is always let in when none waits, whatever its size: the transport's frame limit governs that.
INBOX_LIMIT_BYTES = 64 * 1024 * 1024
# A client frame larger than this is parsed and handed to the session in a worker thread (issue 10: one
# 15 MiB append, decoded, resampled and run through the VAD on the loop, held /healthz for 1.1 s): about
# 1.3 s of 24 kHz PCM16 in base64 (8 s of G.711). Smaller frames, the 20-100 ms appends of a live
# speaker, stay on the loop: a thread hop each would cost more than it saves.
BIG_FRAME_CHARS = 64 * 1024
RESULTS_LIMIT = 256  # engine results waiting for the session before their job waits for room
_CONTROL_INPUTS = 5  # at most one each: client gone, send failed, session expired, session idle, ended
CLOSE_INTERNAL_ERROR = 1011


@dataclass
class _Closed:
    reason: str


@dataclass
class _Expired:
    """The session reached its maximum duration (``expires_at``), went idle, or was ended from
    outside (:meth:`Connection.end`): ``code`` says which, ``close_code`` how the socket closes."""

    code: str
    message: str
    close_code: int = 1001
    error_type: str = "invalid_request_error"


CLOSE_GOING_AWAY = 1001


_connection_keys = itertools.count()


class Connection(CallMedia, EngineJobs):
    """Binds a session to a transport and to the engines (through ``run_job``).

    Its engine calls are queued as its own (:data:`~openrealtime.runtime.scheduler.current_session`),
    so the shared engine threads serve connections in turn.
    """

    def __init__(
        self,
        session: Session,
        transport: Transport,
        kind: SessionKind,
        *,
        run_job: Callable[[object], AsyncIterator[object] | None],
        cancel_job: Callable[[str], None],
        on_event: Callable[[se.ServerEvent], None] | None = None,
        lifetime_s: float | None = None,
        on_append: Callable[[float], None] | None = None,
        speech_lead_s: float = 0.0,
        idle_timeout_s: float | None = None,
        media: MediaPort | None = None,
    ) -> None:
        self.session = session
        self.transport = transport
        self.kind = kind
        self._frames = ClientFrames(kind, call=media is not None)
        self._run_job = run_job  # the engine jobs' (runtime/engine_jobs.py)
        self._cancel_job = cancel_job
        self._on_event = on_event
        # The queue's own bound is the sum of the producers' shares, so a slip in the accounting below
        # fails loudly (QueueFull, a bug: 1011) instead of letting the inbox grow.
        self._inbox: asyncio.Queue[object] = asyncio.Queue(
            maxsize=INBOX_LIMIT + RESULTS_LIMIT + _CONTROL_INPUTS + MEDIA_AUDIO_LIMIT + PLAYBACK_LIMIT
        )
        self._media_queued = 0
        self._playback_queued = 0
        self._after_media = False  # the session's last input was the call's audio
        self._media_full = False  # the call's audio filled the input buffer: dropped until it is emptied
        self.media_dropped_s = 0.0  # seconds of a call's input audio dropped because the session lagged
        self._frames_queued = 0
        self._frame_chars_queued = 0
        self._result_slots = asyncio.Semaphore(RESULTS_LIMIT)
        self._inbox_room = asyncio.Event()  # set each time the session loop takes a client frame
        self._outbox = Outbox(transport)
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._backlog = TranscriptionBacklog(session.error)
        self._close: CloseConnection | None = None  # how the connection ends, once decided
        self._lifetime_s = lifetime_s
        self._on_append = on_append
        self._pacer = SpeechPacer(speech_lead_s)
        self._idle_timeout_s = idle_timeout_s
        self._active_at = 0.0  # the event loop's time of the last frame either way
        self._media = media
        self._ended = False  # end() was called
        if media is not None:
            media.attach(self)

    def end(self, code: str, message: str, close_code: int = 1001, error_type: str = "invalid_request_error") -> None:
        """End the session from outside (another connection resumed it, the server drains): an
        ``error`` with ``code``, ``message`` and ``error_type``, then close ``close_code`` with the
        message, as at the lifetime cap. Once only."""
        if not self._ended:
            self._ended = True
            self._inbox.put_nowait(_Expired(code, message, close_code, error_type))

    @property
    def jobs_running(self) -> int:
        """Engine jobs started and not finished (a decode, an answer's tokens or speech, a tool
        listing): while any runs, the session is in the middle of something (the drain waits)."""
        return len(self._jobs)

    @property
    def outbox_chars(self) -> int:
        """Characters of server events queued for the client or being sent to it."""
        return self._outbox.chars

    def _touch(self) -> None:
        """A frame went either way: the session is not idle."""
        self._active_at = asyncio.get_running_loop().time()

    def _gone(self) -> None:
        self._inbox.put_nowait(_Closed("send failed"))

    async def run(self) -> None:
        """Serve until the client goes, the session asks to close, or a bug (closed with 1011).

        A closed connection's session is freed by reference counting, not left to the cyclic garbage
        collector (issue 10: seven 300 MB sessions in turn left +1.5 GB): on a crash, the exception
        group and the frames of its traceback form cycles (``TaskGroup.__aexit__``'s frame holds the
        group that holds its traceback), and those frames hold this connection; their locals are
        cleared once the crash is logged.
        """
        key = current_session.set(f"conn_{next(_connection_keys)}")  # copied into every task below
        try:
            await self._serve()
        except* Exception as crash:
            log.exception("session crashed; closing with 1011")
            _clear_frames(crash)
            with contextlib.suppress(Exception):
                await self.transport.close(CLOSE_INTERNAL_ERROR, "internal server error")
        finally:
            current_session.reset(key)

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            reader = tg.create_task(self._reader())
            writer = tg.create_task(self._outbox.run(on_sent=self._touch, on_gone=self._gone))
            loop = asyncio.get_running_loop()
            self._active_at = loop.time()
            expiry = idle = None
            if self._lifetime_s is not None:
                lifetime = _Expired("session_expired", session_expired_message(self._lifetime_s))
                expiry = loop.call_later(self._lifetime_s, self._inbox.put_nowait, lifetime)
            if self._idle_timeout_s:
                idle = tg.create_task(self._idle_watch(self._idle_timeout_s))
            try:
                await self._session_loop()
            finally:
                if expiry is not None:
                    expiry.cancel()
                if idle is not None:
                    idle.cancel()
            reader.cancel()
            for task in list(self._jobs.values()):
                task.cancel()
            if self._outbox.too_slow:
                writer.cancel()
                await self._outbox.close_now(CLOSE_TOO_SLOW, "client too slow: outbox full")
                return
            await self._outbox.goodbye(writer, self._close or CloseConnection(CLOSE_NORMAL, ""))

    async def _idle_watch(self, idle_s: float) -> None:
        """Close a session in which neither side has sent anything for ``idle_s`` (a client that
        connected and went silent holds a session place, which are few: docs/security.md)."""
        loop = asyncio.get_running_loop()
        while True:  # the deadline moves with each frame: sleep to it, then look again
            wait = self._active_at + idle_s - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._inbox.put_nowait(_Expired("session_idle_timeout", session_idle_message(idle_s)))

    async def _reader(self) -> None:
        while True:
            await self._backlog.room()  # a sender far ahead of real time waits for its decodes
            frame = await self.transport.receive()
            self._touch()
            if frame is None:
                self._inbox.put_nowait(_Closed("client disconnected"))
                return
            while self._frames_queued and (
                self._frames_queued >= INBOX_LIMIT or self._frame_chars_queued + len(frame) > INBOX_LIMIT_BYTES
            ):
                # Backpressure: the client's next frames wait in its socket until the session catches up.
                self._inbox_room.clear()
                await self._inbox_room.wait()
            self._frames_queued += 1
            self._frame_chars_queued += len(frame)
            self._inbox.put_nowait(frame)

    async def _session_loop(self) -> None:
        session = self.session
        if not await self._flush():
            return
        loop = asyncio.get_running_loop()
        slice_end = loop.time() + SHARE.slice_s()
        behind = False  # counted in SHARE.behind: this loop has yielded with inputs still waiting
        try:
            while True:
                if self._inbox.empty():  # the get below waits, and every other task runs meanwhile
                    if behind:
                        SHARE.behind -= 1
                        behind = False
                    item = await self._inbox.get()
                    slice_end = loop.time() + SHARE.slice_s()
                elif loop.time() >= slice_end:
                    # A queue with items never suspends its getter: without this, a burst of 2,000
                    # items held the event loop (every other session, /healthz) until it was all
                    # handled. The slice is shared by the sessions behind (runtime/loop_share.py).
                    if not behind:
                        SHARE.behind += 1
                        behind = True
                    await asyncio.sleep(0)
                    slice_end = loop.time() + SHARE.slice_s()
                    item = self._inbox.get_nowait()
                else:
                    item = self._inbox.get_nowait()
                if not await self._handle(session, item):
                    return
        finally:
            if behind:
                SHARE.behind -= 1

    async def _handle(self, session: Session, item: object) -> bool:
        """Take one inbox item; False once the loop is to end."""
        if isinstance(item, str | bytes):
            self._frames_queued -= 1
            self._frame_chars_queued -= len(item)
            self._inbox_room.set()
        elif isinstance(item, MediaAudio):
            self._media_queued -= 1
        elif isinstance(item, PLAYBACK_TYPES):
            self._playback_queued -= 1
        elif not isinstance(item, _Closed | _Expired):
            self._result_slots.release()
        if isinstance(item, _Closed):
            return False
        if isinstance(item, _Expired):
            # Like OpenAI at 60 minutes: a fatal error event, then close 1001 with the same reason.
            session.error(ProtocolError(item.message, code=item.code, error_type=item.error_type))
            if await self._flush():
                self._close = CloseConnection(item.close_code, item.message)
            return False
        if isinstance(item, bytes):
            session.error(
                ProtocolError(
                    "Expected a text WebSocket message; binary frames are not supported.",
                    code="invalid_event",
                )
            )
        elif isinstance(item, str):
            if len(item) > BIG_FRAME_CHARS:
                # Off the loop: the session loop awaits it, so the session is still touched by one
                # task at a time (no lock), while every other connection and /healthz go on.
                await asyncio.to_thread(self._take_frame, item)
            else:
                self._take_frame(item)
        elif isinstance(item, MediaAudio):
            self._take_media(item)
        elif isinstance(item, PLAYBACK_TYPES):
            if isinstance(item, PlaybackStarted):  # the listener's real start: pace the rest from it
                self._pacer.heard(item.response_id)
            session.on_playback(item)
        elif isinstance(item, RESULT_TYPES):
            session.on_result(item)
        else:
            raise TypeError(f"unexpected inbox item {item!r}")  # a bug: closes with 1011
        return await self._flush()

    def _take_frame(self, frame: str) -> None:
        """Parse one text frame (base64, PCM) and hand it to the session (its VAD, resampling)."""
        started = time.thread_time()
        try:
            event = self._frames.parse(frame, self.session.input_format)
        except ProtocolError as exc:
            self.session.error(exc)
            return
        if isinstance(event, RESUMES_MEDIA):
            self._media_full = False
        self.session.receive(event)
        if isinstance(event, AudioIn) and isinstance(event.event, ce.InputAudioBufferAppend | ce.TranslationAppend):
            self._backlog.received(event.samples.size / event.rate_hz)
        if self._on_append is not None and isinstance(event, AudioIn):
            self._on_append(time.thread_time() - started)

    async def _flush(self) -> bool:
        """Send what the session produced and start its commands; False once the connection closes."""
        events, commands = self.session.drain()
        after_media, self._after_media = self._after_media, False
        for event in events:
            if after_media and isinstance(event, se.Error) and event.error.code == BUFFER_FULL_CODE:
                self._media_full = True
            if self._on_event is not None:
                self._on_event(event)
            if not await self._outbox.put(dump_server_event(event)):
                return False
        for command in commands:
            if isinstance(command, CloseConnection):
                self._close = command  # sent by ``run`` once the outbox has room: never dropped
                return False
            if isinstance(command, PlayAudio | EndOfAudio | ClearPlayback | HoldPlayback):
                self._play(command)
                continue
            if isinstance(command, CancelJob):
                self._cancel(command.job_id)
                continue
            self._start_job(command)
        return True


def _clear_frames(error: BaseException) -> None:
    """Drop the locals of the finished frames in ``error``'s tracebacks (and its sub-exceptions')."""
    traceback.clear_frames(error.__traceback__)
    for cause in (error.__cause__, error.__context__):
        if cause is not None and cause is not error:
            traceback.clear_frames(cause.__traceback__)
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            _clear_frames(inner)
