"""The voice-assistant client: full-duplex audio with any Realtime server (``/v1/realtime?model=...``).

This module owns :class:`Assistant`, the async driver of one assistant conversation, and the scripted
file turn of the CLI (:func:`scripted_turn`). Every decision (barge-in and truncation, tool rounds,
turn bookkeeping, when to move to a new session) is made by the pure
:class:`~openrealtime.client.turns.TurnTaking`; the assistant keeps the I/O:

* it streams microphone or file audio (PCM16, 24 kHz) as ``input_audio_buffer.append`` while it plays
  the answer through a :class:`~openrealtime.client.playback.Player`, stops that player at a barge-in
  and reports what was played of each item;
* it parses each server event leniently (:func:`~openrealtime.protocol.codec.server_event_from_dict`),
  hands it to the turn-taking, and carries out what comes back: client events to send, audio to play,
  function tools (:mod:`~openrealtime.client.tools`) to run in their own tasks;
* it keeps the conversation connected: a margin before the session's ``expires_at``, after an
  unexpected close, or when its door drains (1012), it asks the same session back, from the next of
  its doors (:mod:`~openrealtime.client.opening`, :mod:`~openrealtime.client.failover`), or opens a
  new session with the same ``session.update`` and the conversation
  (:mod:`~openrealtime.client.history`) replayed as ``conversation.item.create`` events
  (:mod:`~openrealtime.client.moving`).

One reader task handles server events strictly in order; the caller's task sends audio; tool calls run
in their own tasks. All of them live in one :class:`asyncio.TaskGroup` held by the ``async with``.

With ``transport="webrtc"`` each session is a WebRTC call (:mod:`~openrealtime.client.call`): the
audio goes on the call's track, and the server plays the answer on its own: what it says it plays
(``output_audio_buffer.started`` to ``.stopped`` / ``.cleared``) goes to the player
(:class:`CallAudio`), and a barge-in only stops the player, as the server truncates the answer to
what was heard itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.client.assistant_config import AssistantOptions, session_update
from openrealtime.client.audio_io import WIRE_RATE_HZ, file_chunks
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.history import ConversationHistory
from openrealtime.client.moving import SessionMoves
from openrealtime.client.opening import open_session
from openrealtime.client.playback import MS_PER_S, ClockPlayer, Player, interrupt
from openrealtime.client.requests import PendingRequests
from openrealtime.client.tools import ToolRegistry
from openrealtime.client.turns import (
    Action,
    FunctionCall,
    InterruptPlayback,
    PausePlayback,
    Play,
    ResumePlayback,
    RunTools,
    Send,
    StopPlayback,
    Truncation,
    TurnTaking,
)
from openrealtime.exceptions import ConnectionClosedError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent, server_event_from_dict

if TYPE_CHECKING:
    from openrealtime.client.call import CallConnection

__all__ = ["Assistant", "EventHook", "Truncation", "TurnResult", "scripted_turn"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0  # a client event's reply (e.g. conversation.item.retrieve)
CHUNK_MS = 100
SCRIPTED_TAIL_SILENCE_MS = 1500  # after a file, so server VAD sees the end of the turn
SCRIPTED_TURN_TIMEOUT_S = 120.0
# A call's answer frames arrive a little after the server's events about them (the caller's jitter
# buffer): its audio is taken this long past output_audio_buffer.stopped or .cleared.
CALL_AUDIO_TAIL_S = 0.3
TRANSPORTS = ("websocket", "webrtc")

# Observers get each server event as it came on the wire, and its arrival time (loop clock, seconds).
EventHook = Callable[[dict[str, Any], float], None]
ServerEvent = se.ServerEvent | UnknownServerEvent
T = TypeVar("T")


class CallAudio:
    """A call's answer audio (PCM16, 24 kHz, from the server's track) to the player, and kept when
    ``keep``: only what the server says it plays, so the silence between answers neither plays nor
    keeps the player busy (the ``mute_mic`` guard reads it)."""

    def __init__(self, player: Player, *, keep: bool) -> None:
        self.player = player
        self.keep = keep
        self.heard: list[bytes] = []
        self._playing = False
        self._until = 0.0  # loop time: frames in flight after the server stopped still count
        self._spoken: set[str] = set()  # responses with audio (response.output_audio.done)
        self._ended: set[str] = set()  # responses whose playback ended (stopped or cleared)

    def on_event(self, event: dict[str, Any], at_s: float) -> None:
        kind, response_id = event.get("type"), event.get("response_id")
        if kind == "response.output_audio.done" and isinstance(response_id, str):
            self._spoken.add(response_id)
        elif kind == "output_audio_buffer.started":
            self._playing = True
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            self._playing = False
            self._until = at_s + CALL_AUDIO_TAIL_S
            if isinstance(response_id, str):
                self._ended.add(response_id)
            if kind == "output_audio_buffer.cleared":
                self.player.stop()

    def played_out(self) -> bool:
        """Every response that had audio has been played to its end (or cut) by the server."""
        return self._spoken <= self._ended

    def on_audio(self, pcm16: bytes) -> None:
        if not self._playing and asyncio.get_running_loop().time() > self._until:
            return
        self.player.play("call", pcm16)
        if self.keep:
            self.heard.append(pcm16)


class _OfTurns(Generic[T]):
    """An attribute of the assistant read from its :class:`TurnTaking` (one source of truth)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, assistant: Assistant, owner: type | None = None) -> T:
        return cast(T, getattr(assistant.turns, self._name))


class Assistant(SessionMoves):
    """One assistant conversation, across as many sessions as its lifetime needs.

    Use as ``async with Assistant(options, player=...) as assistant:``, then stream audio with
    :meth:`stream` or :meth:`send_audio`. The assistant does not own the player: close it yourself.
    Its state (``session``, ``truncations``, ``errors``, ``responses``, ...) is that of :attr:`turns`.

    Args:
        options: Connection and session settings.
        player: Where answers play; a :class:`ClockPlayer` (real-time pace, no device) by default.
        tools: Functions the model may call.
        history: The conversation to keep (e.g. one a :class:`TranscriptPrinter` follows); a new one by
            default.
        on_event: Called with every server event (the wire dict) and its arrival time (loop clock,
            seconds), after the assistant has handled it.
    """

    def __init__(
        self,
        options: AssistantOptions | None = None,
        *,
        player: Player | None = None,
        tools: ToolRegistry | None = None,
        history: ConversationHistory | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.options = options or AssistantOptions()
        self.player: Player = player or ClockPlayer()
        self.tools = tools
        self.history = history if history is not None else ConversationHistory()
        self.turns = TurnTaking(self.options, history=self.history, tools=tools is not None)
        self.reconnects = 0
        self._on_event = on_event
        self._update = session_update(self.options, tools)
        self._conn: RealtimeConnection | CallConnection | None = None
        if self.options.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.options.transport!r}")
        webrtc = self.options.transport == "webrtc"
        self.call_audio = CallAudio(self.player, keep=self.options.keep_audio) if webrtc else None
        self._ready = asyncio.Event()  # connected and configured: sending is allowed
        self._rearm = asyncio.Event()  # a new session (or closing): recompute the expiry deadline
        self._changed = asyncio.Condition()
        self._reconnect_lock = asyncio.Lock()
        self._closing = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._requests = PendingRequests()
        self._tool_tasks: set[asyncio.Task[None]] = set()

    # The conversation's state is the turn-taking's; see TurnTaking for what each attribute holds.
    session = _OfTurns[dict[str, Any]]()
    expires_at = _OfTurns[float | None]()
    truncations = _OfTurns[list[Truncation]]()
    deletions = _OfTurns[list[str]]()
    errors = _OfTurns[list[dict[str, Any]]]()
    responses = _OfTurns[list[dict[str, Any]]]()
    speech_starts = _OfTurns[int]()
    responding = _OfTurns[bool]()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        # a refusal raises here
        self._conn = await open_session(self.options, self._update, self.turns, self.call_audio)
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        self._tg = await stack.enter_async_context(asyncio.TaskGroup())
        stack.push_async_callback(self._shutdown)  # runs first on exit, so the tasks can end
        self._ready.set()
        self._tg.create_task(self._read_loop())
        self._tg.create_task(self._expiry_loop())
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._stack is not None
        try:
            return bool(await self._stack.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            # One error (the caller's own, or one task's) is raised as itself, not wrapped in a group.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _shutdown(self) -> None:
        self._closing = True
        self._rearm.set()
        for task in self._tool_tasks:
            task.cancel()
        if self._conn is not None:
            await self._conn.close()
        self._requests.cancel_all()

    # --- state -------------------------------------------------------------------------------------

    @property
    def muted(self) -> bool:
        """Whether microphone audio is being dropped now (``mute_mic`` echo guard)."""
        return self.turns.mic_muted(playing=self.player.playing, idle_s=self.player.idle_s())

    def idle(self) -> bool:
        """Nothing in flight: no user turn, response, tool call or transcript still to come."""
        return self.turns.idle()

    def answer_audio(self, item_ids: list[str] | None = None) -> bytes:
        """PCM16 audio of assistant items (all, in conversation order, by default), cut to what was
        heard where a barge-in truncated them. Needs ``keep_audio``. On a call: everything the server
        played, whatever ``item_ids``."""
        if self.call_audio is not None:
            return b"".join(self.call_audio.heard)
        return self.turns.answer_audio(item_ids)

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float) -> None:
        """Wait until ``predicate()`` holds; it is checked after every server event and state change.

        Raises:
            TimeoutError: After ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- sending -----------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> bool:
        """Send a client event on the current session; ``False`` if that session just closed (the
        reader reconnects, and the event is lost with the session it was meant for)."""
        await self._ready.wait()
        return await self._send_now(event)

    async def _send_now(self, event: dict[str, Any]) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.send(event)
        except ConnectionClosedError:
            return False
        return True

    async def send_audio(self, pcm16: bytes) -> bool:
        """Append microphone or file audio; ``False`` when dropped (muted, or the session closed)."""
        if self.muted:
            return False
        await self._ready.wait()
        conn = self._conn
        if conn is None:
            return False
        try:
            await conn.append_audio(pcm16)  # an append event, or onto the call's track
        except ConnectionClosedError:
            return False
        return True

    async def stream(self, chunks: AsyncIterator[bytes]) -> None:
        """Send every chunk as it comes (the source sets the pace)."""
        async for chunk in chunks:
            await self.send_audio(chunk)

    async def request(
        self,
        event: dict[str, Any],
        matches: Callable[[ServerEvent], bool],
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> ServerEvent:
        """Send ``event`` and return the first server event that ``matches``.

        Raises:
            ProtocolError: If the server answers with an ``error`` for this event.
            TimeoutError: If no reply comes within ``timeout_s``.
        """
        event_id = event.get("event_id") or self.turns.next_event_id()
        with self._requests.expect(event_id, matches) as reply:
            await self.send({**event, "event_id": event_id})
            async with asyncio.timeout(timeout_s):
                return await reply

    async def retrieve(self, item_id: str) -> dict[str, Any]:
        """The server's copy of an item (``conversation.item.retrieve``)."""
        reply = await self.request(
            {"type": "conversation.item.retrieve", "item_id": item_id},
            lambda e: isinstance(e, se.ItemRetrieved) and e.item.get("id") == item_id,
        )
        assert isinstance(reply, se.ItemRetrieved)
        return reply.item

    async def create_response(self, params: dict[str, Any] | None = None) -> None:
        """``response.create`` (manual turns, or after tool outputs)."""
        await self._execute([self.turns.create_response(params)])

    # --- carrying out the turn-taking's decisions --------------------------------------------------

    async def _handle(self, raw: dict[str, Any], at_s: float) -> None:
        event = server_event_from_dict(raw)
        if self.call_audio is not None:
            self.call_audio.on_event(raw, at_s)
        await self._execute(self.turns.receive(event))
        self._requests.settle(event)
        if self._on_event is not None:
            self._on_event(raw, at_s)
        await self._notify()

    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send(event=event):
                    if not await self.send(event):
                        self.turns.not_sent(event.get("event_id"))
                case Play(item_id=item_id, pcm16=pcm16):
                    self.player.play(item_id, pcm16)
                case StopPlayback():
                    self.player.stop()
                case PausePlayback() if self.call_audio is None:
                    self.player.pause()  # the server judges the speech (a call's server holds its own)
                case ResumePlayback() if self.call_audio is None:
                    self.player.resume()
                case InterruptPlayback() if self.call_audio is not None:
                    self.player.stop()  # the server cuts its own playback and truncates (reference 1.3)
                case InterruptPlayback(measure=measure):
                    await self._execute(self.turns.playback_interrupted(interrupt(self.player, measure)))
                case RunTools(calls=calls):
                    assert self._tg is not None
                    task = self._tg.create_task(self._run_tools(calls))
                    self._tool_tasks.add(task)
                    task.add_done_callback(self._tool_tasks.discard)

    async def _run_tools(self, calls: tuple[FunctionCall, ...]) -> None:
        """Run the calls, return their outputs, and ask for the answer that uses them (reference 6.4)."""
        assert self.tools is not None
        try:
            for call in calls:
                await self.send(call.answer(await self.tools.call(call.name, call.arguments)))
        except BaseException:
            self.turns.tools_abandoned()
            await self._notify()
            raise
        await self._execute([self.turns.tools_finished()])
        await self._notify()


@dataclass
class TurnResult:
    """What one scripted turn produced.

    Attributes:
        user: Transcripts of the user's items of the turn, in order.
        assistant: Transcripts of the assistant's answers (after any tool round trip).
        audio: The answer audio, PCM16 at 24 kHz.
        responses: The ``response.done`` payloads of the turn.
    """

    user: list[str]
    assistant: list[str]
    audio: bytes
    responses: list[dict[str, Any]]


async def scripted_turn(
    assistant: Assistant,
    speech: Samples,
    *,
    realtime: bool = True,
    tail_silence_ms: int = SCRIPTED_TAIL_SILENCE_MS,
    timeout_s: float = SCRIPTED_TURN_TIMEOUT_S,
) -> TurnResult:
    """Say ``speech`` (float32, 24 kHz), then silence, and wait until the answer is complete.

    With turn detection off, the turn is committed and a response requested explicitly.

    Raises:
        TimeoutError: If no complete answer arrives within ``timeout_s`` (e.g. no speech detected).
    """
    responses_before = len(assistant.responses)
    known = {item.id for item in assistant.history.items()}
    audio = np.concatenate([speech, np.zeros(WIRE_RATE_HZ * tail_silence_ms // MS_PER_S, np.float32)])
    await assistant.stream(file_chunks(audio, chunk_ms=CHUNK_MS, realtime=realtime))
    if assistant.options.turn_detection is None:
        await assistant.send({"type": "input_audio_buffer.commit"})
        await assistant.create_response()
    call_audio = assistant.call_audio
    await assistant.wait_until(
        lambda: (
            len(assistant.responses) > responses_before
            and assistant.idle()
            and (call_audio is None or call_audio.played_out())
        ),
        timeout_s=timeout_s,
    )
    if call_audio is not None:
        await asyncio.sleep(CALL_AUDIO_TAIL_S)  # the last frames, still in flight when the server stopped
    new = [item for item in assistant.history.items() if item.id not in known]
    answers = [i for i in new if i.type == "message" and i.role == "assistant"]
    return TurnResult(
        user=[i.text for i in new if i.type == "message" and i.role == "user"],
        assistant=[i.text for i in answers],
        audio=assistant.answer_audio([i.id for i in answers]),
        responses=assistant.responses[responses_before:],
    )
