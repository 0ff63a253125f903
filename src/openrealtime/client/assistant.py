"""The voice-assistant client: full-duplex audio with any Realtime server (``/v1/realtime?model=...``).

This module owns :class:`Assistant`, the async driver of one assistant conversation, and the scripted
file turn of the CLI (:func:`scripted_turn`). The assistant:

* streams microphone or file audio (PCM16, 24 kHz) as ``input_audio_buffer.append`` while it plays the
  answer (``response.output_audio.delta``) through a :class:`~openrealtime.client.playback.Player`;
* on ``input_audio_buffer.speech_started`` stops playback, flushes the queue, and truncates each cut
  assistant item to the milliseconds of *its* audio actually played (reference 6.3), or deletes the
  item when none of it was heard, as several SDKs do, because a truncate at 0 ms is rejected; when
  the server is not set to interrupt (``interrupt_response: false``) it cancels the response itself;
* optionally mutes the microphone while the assistant speaks and for a cooldown after (a half-duplex
  echo guard for laptop speakers; barge-in is then impossible, so the server is told not to interrupt);
* runs function tools (:mod:`~openrealtime.client.tools`) when a completed response holds
  ``function_call`` items, answers with ``function_call_output`` items and ``response.create``;
* keeps the conversation (:mod:`~openrealtime.client.history`) and, a margin before the session's
  ``expires_at`` or after an unexpected close, reconnects: a new session gets the same
  ``session.update`` and the conversation replayed as ``conversation.item.create`` events.

One reader task handles server events strictly in order; the caller's task sends audio; tool calls run
in their own tasks. All of them live in one :class:`asyncio.TaskGroup` held by the ``async with``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import numpy as np
import websockets

from openrealtime.audio.types import Samples
from openrealtime.client.assistant_config import AssistantOptions, session_update
from openrealtime.client.audio_io import WIRE_RATE_HZ, file_chunks
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.history import ConversationHistory
from openrealtime.client.playback import BYTES_PER_SAMPLE, MS_PER_S, ClockPlayer, Player
from openrealtime.client.tools import ToolRegistry
from openrealtime.exceptions import ConnectionClosedError, ProtocolError

log = logging.getLogger(__name__)

RECONNECT_ATTEMPTS = 3
RECONNECT_BACKOFF_S = 0.5  # doubled after each failed attempt
CONFIGURE_TIMEOUT_S = 30.0  # connect, session.created and session.updated
REQUEST_TIMEOUT_S = 30.0  # a client event's reply (e.g. conversation.item.retrieve)
MAX_TOOL_ROUNDS = 4  # consecutive tool-call responses before the follow-up forbids tools
CHUNK_MS = 100
SCRIPTED_TAIL_SILENCE_MS = 1500  # after a file, so server VAD sees the end of the turn
SCRIPTED_TURN_TIMEOUT_S = 120.0
# Harmless replies: a barge-in racing a response that already ended, or our follow-up
# ``response.create`` racing one the server started itself (reference 6.4 notes).
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})

EventHook = Callable[[dict[str, Any], float], None]


@dataclass(frozen=True)
class Truncation:
    """A barge-in's cut of one assistant item.

    Attributes:
        item_id: The assistant item.
        audio_end_ms: What was played of it (the ``audio_end_ms`` sent).
        received_ms: What had been received of it.
    """

    item_id: str
    audio_end_ms: int
    received_ms: int


@dataclass
class _ResponseState:
    id: str
    audio: bool
    messages: list[str] = field(default_factory=list)


class Assistant:
    """One assistant conversation, across as many sessions as its lifetime needs.

    Use as ``async with Assistant(options, player=...) as assistant:``, then stream audio with
    :meth:`stream` or :meth:`send_audio`. The assistant does not own the player: close it yourself.

    Args:
        options: Connection and session settings.
        player: Where answers play; a :class:`ClockPlayer` (real-time pace, no device) by default.
        tools: Functions the model may call.
        history: The conversation to keep (e.g. one a :class:`TranscriptPrinter` follows); a new one by
            default.
        on_event: Called with every server event and its arrival time (loop clock, seconds), after
            the assistant has handled it.
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
        self.session: dict[str, Any] = {}
        self.expires_at: float | None = None
        self.truncations: list[Truncation] = []
        self.deletions: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # response.done payloads, in order
        self.speech_starts = 0
        self.reconnects = 0
        self._on_event = on_event
        self._update = session_update(self.options, tools)
        self._conn: RealtimeConnection | None = None
        self._ready = asyncio.Event()  # connected and configured: sending is allowed
        self._rearm = asyncio.Event()  # a new session (or closing): recompute the expiry deadline
        self._fresh_session = False
        self._changed = asyncio.Condition()
        self._reconnect_lock = asyncio.Lock()
        self._closing = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._ids = itertools.count(1)
        self._active: _ResponseState | None = None
        self._expecting_response = False
        self._response_request: str | None = None  # event_id of our own response.create
        self._user_speaking = False
        self._interrupted: set[str] = set()
        self._audio_items: set[str] = set()  # items with audio in the current session
        self._truncating: dict[str, str] = {}  # event_id -> item id
        self._refreshing: dict[str, str] = {}  # event_id of a retrieve -> item id
        self._requests: dict[str, tuple[Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]] = {}
        self._audio: dict[str, list[bytes]] = {}
        self._tools_running = 0
        self._tool_rounds = 0
        self._tool_tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._conn = await self._open()  # a refused session raises here, before any task exists
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
        for _, future in self._requests.values():
            future.cancel()

    # --- state -------------------------------------------------------------------------------------

    @property
    def responding(self) -> bool:
        """Whether a response of the default conversation is in progress."""
        return self._active is not None

    @property
    def muted(self) -> bool:
        """Whether microphone audio is being dropped now (``mute_mic`` echo guard)."""
        if not self.options.mute_mic:
            return False
        return self.player.playing or self.player.idle_s() * MS_PER_S < self.options.mute_cooldown_ms

    def idle(self) -> bool:
        """Nothing in flight: no user turn, response, tool call or transcript still to come."""
        return (
            self._active is None
            and not self._expecting_response
            and not self._user_speaking
            and self._tools_running == 0
            and not self._truncating
            and not self._refreshing
            and self.history.all_final()
        )

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

    def answer_audio(self, item_ids: list[str] | None = None) -> bytes:
        """PCM16 audio of assistant items (all, in conversation order, by default), cut to what was
        heard where a barge-in truncated them. Needs ``keep_audio``."""
        ids = item_ids
        if ids is None:
            ids = [i.id for i in self.history.items() if i.type == "message" and i.role == "assistant"]
        cuts = {t.item_id: t.audio_end_ms for t in self.truncations}
        parts: list[bytes] = []
        for item_id in ids:
            audio = b"".join(self._audio.get(item_id, ()))
            if item_id in cuts:
                audio = audio[: cuts[item_id] * WIRE_RATE_HZ // MS_PER_S * BYTES_PER_SAMPLE]
            parts.append(audio)
        return b"".join(parts)

    # --- sending -----------------------------------------------------------------------------------

    def _event_id(self) -> str:
        return f"evt_or_{next(self._ids)}"

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
        return await self._send_now(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16).decode("ascii")}
        )

    async def stream(self, chunks: AsyncIterator[bytes]) -> None:
        """Send every chunk as it comes (the source sets the pace)."""
        async for chunk in chunks:
            await self.send_audio(chunk)

    async def request(
        self,
        event: dict[str, Any],
        matches: Callable[[dict[str, Any]], bool],
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Send ``event`` and return the first server event that ``matches``.

        Raises:
            ProtocolError: If the server answers with an ``error`` for this event.
            TimeoutError: If no reply comes within ``timeout_s``.
        """
        event_id = event.get("event_id") or self._event_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[event_id] = (matches, future)
        try:
            await self.send({**event, "event_id": event_id})
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self._requests.pop(event_id, None)

    async def retrieve(self, item_id: str) -> dict[str, Any]:
        """The server's copy of an item (``conversation.item.retrieve``)."""
        reply = await self.request(
            {"type": "conversation.item.retrieve", "item_id": item_id},
            lambda e: e.get("type") == "conversation.item.retrieved" and e["item"].get("id") == item_id,
        )
        item: dict[str, Any] = reply["item"]
        return item

    async def create_response(self, params: dict[str, Any] | None = None) -> None:
        """``response.create`` (manual turns, or after tool outputs)."""
        event_id = self._event_id()
        self._response_request, self._expecting_response = event_id, True
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if params:
            event["response"] = params
        if not await self.send(event):
            self._response_request, self._expecting_response = None, False

    # --- connecting --------------------------------------------------------------------------------

    def _on_session(self, event: dict[str, Any]) -> None:
        session = event.get("session") or {}
        self.session = session
        expires_at = session.get("expires_at")
        if isinstance(expires_at, int | float) and expires_at > 0:
            self.expires_at = float(expires_at)

    async def _open(self) -> RealtimeConnection:
        """Connect, configure with the same ``session.update``, and replay the conversation."""
        conn = await RealtimeConnection.connect(self.options.url, api_key=self.options.api_key)
        try:
            async with asyncio.timeout(CONFIGURE_TIMEOUT_S):
                configured = False
                await conn.send(self._update)
                while not configured:
                    event = await conn.recv()
                    kind = event.get("type")
                    if kind == "error":
                        error = event.get("error") or {}
                        raise ProtocolError(
                            f"the server refused the session: {error.get('message')}",
                            code=error.get("code"),
                            param=error.get("param"),
                        )
                    if kind in ("session.created", "session.updated"):
                        self._on_session(event)
                        configured = kind == "session.updated"
            for replay in self.history.replay_events():
                await conn.send(replay)
        except BaseException:
            await conn.close()
            raise
        self._fresh_session = True
        return conn

    async def reconnect(self, *, lost: RealtimeConnection | None = None) -> None:
        """Move the conversation to a new session now: same ``session.update``, items replayed.

        Args:
            lost: The connection that closed unexpectedly, if that is why (then whatever was in
                flight on it is abandoned); ``None`` for a planned move.

        Raises:
            ConnectionClosedError: If no new session could be opened after ``RECONNECT_ATTEMPTS``.
        """
        async with self._reconnect_lock:
            if lost is not None and lost is not self._conn:
                return  # already replaced
            old = self._conn
            self._ready.clear()
            self._abandon_in_flight(stop_playback=lost is not None)
            delay_s = RECONNECT_BACKOFF_S
            for attempt in range(1, RECONNECT_ATTEMPTS + 1):
                try:
                    self._conn = await self._open()
                    break
                except (OSError, TimeoutError, ConnectionClosedError, websockets.WebSocketException) as exc:
                    log.warning("reconnect attempt %d failed: %s", attempt, exc)
                    if attempt == RECONNECT_ATTEMPTS:
                        raise ConnectionClosedError(None, f"could not reconnect: {exc}") from exc
                    await asyncio.sleep(delay_s)  # back-off between attempts, not ordering
                    delay_s *= 2
            self.reconnects += 1
            self._ready.set()
            self._rearm.set()
        if old is not None and old is not lost:
            await old.close()
        await self._notify()

    def _abandon_in_flight(self, *, stop_playback: bool) -> None:
        """Forget what the old session will never finish: the open response, pending transcripts."""
        if stop_playback and self._active is not None:
            self.player.stop()
        for item in self.history.items():
            if not item.final and not item.held:
                self.history.remove(item.id)
        for item_id in [*self._truncating.values(), *self._refreshing.values()]:
            self.history.release(item_id)
        self._truncating.clear()
        self._refreshing.clear()
        # Replayed items are text in the new session: what still plays of them cannot be truncated.
        self._audio_items.clear()
        self._interrupted.clear()
        self._active = None
        self._expecting_response = self._user_speaking = False
        self._response_request = None

    def _reconnect_due_s(self) -> float | None:
        if self.expires_at is None:
            return None
        return self.expires_at - self.options.reconnect_margin_s - time.time()

    async def _expiry_loop(self) -> None:
        while not self._closing:
            self._rearm.clear()
            due_s = self._reconnect_due_s()
            fresh, self._fresh_session = self._fresh_session, False
            if due_s is None or (due_s <= 0 and fresh):
                if due_s is not None:
                    log.warning("the session expires within the reconnect margin; not reconnecting early")
                await self._rearm.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rearm.wait(), timeout=max(0.0, due_s))
            if self._rearm.is_set():
                continue  # a new session or closing: recompute
            with contextlib.suppress(TimeoutError):  # move between turns if one comes soon enough
                await self.wait_until(self.idle, timeout_s=self.options.reconnect_margin_s / 2)
            if not self._closing:
                log.info("session expires at %s: moving the conversation to a new session", self.expires_at)
                await self.reconnect()

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn = self._conn
            assert conn is not None
            async for event in conn:  # ends quietly when the socket closes
                await self._handle(event, loop.time())
            if self._closing:
                return
            if conn is self._conn:
                log.warning("the session closed (code %s); reconnecting", conn.close_code)
                await self.reconnect(lost=conn)

    # --- handling server events --------------------------------------------------------------------

    async def _handle(self, event: dict[str, Any], at_s: float) -> None:
        kind = event.get("type", "")
        handler = self._HANDLERS.get(kind)
        self.history.feed(event)
        if handler is not None:
            await handler(self, event)
        for matches, future in list(self._requests.values()):
            if not future.done() and matches(event):
                future.set_result(event)
        if self._on_event is not None:
            self._on_event(event, at_s)
        await self._notify()

    async def _on_session_event(self, event: dict[str, Any]) -> None:
        self._on_session(event)

    async def _on_error(self, event: dict[str, Any]) -> None:
        error = event.get("error") or {}
        event_id = error.get("event_id")
        if event_id is not None and event_id == self._response_request:
            self._response_request, self._expecting_response = None, False
        for pending in (self._truncating, self._refreshing):
            if event_id in pending:
                self.history.release(pending.pop(event_id))
        request = self._requests.get(event_id or "")
        if request is not None and not request[1].done():
            request[1].set_exception(
                ProtocolError(error.get("message", ""), code=error.get("code"), param=error.get("param"))
            )
        if error.get("code") not in BENIGN_ERROR_CODES:
            log.warning("server error: %s", error.get("message"))
            self.errors.append(error)

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        """Barge-in: stop playback, then cut every item whose audio was not all heard (reference 6.3)."""
        self._user_speaking = True
        self.speech_starts += 1
        victims = self.player.stop()
        active = self._active
        if active is not None:
            if active.audio:
                victims += [i for i in active.messages if i not in victims]
            td = (self.session.get("audio") or {}).get("input", {}).get("turn_detection")
            if not (td and td.get("interrupt_response", True)):
                await self.send({"type": "response.cancel"})  # the server will not cancel it itself
        in_response = active.messages if active is not None else []
        for item_id in victims:
            known_here = item_id in self._audio_items or item_id in in_response
            if item_id in self._interrupted or not known_here:
                continue
            self._interrupted.add(item_id)
            played_ms = self.player.played_ms(item_id)
            event_id = self._event_id()
            if played_ms > 0:
                self.truncations.append(Truncation(item_id, played_ms, self.player.ledger.received_ms(item_id)))
                self._truncating[event_id] = item_id
                self.history.hold(item_id)
                truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
                await self.send({**truncate, "audio_end_ms": played_ms, "event_id": event_id})
            else:
                # Nothing of it was heard: a truncate to 0 ms is refused, so remove it instead.
                self.deletions.append(item_id)
                await self.send({"type": "conversation.item.delete", "item_id": item_id, "event_id": event_id})

    async def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        self._user_speaking = False

    async def _on_committed(self, event: dict[str, Any]) -> None:
        self._user_speaking = False
        td = (self.session.get("audio") or {}).get("input", {}).get("turn_detection")
        if td and td.get("create_response", True) and self._active is None:
            self._expecting_response = True

    async def _on_truncated(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        for event_id, pending in list(self._truncating.items()):
            if pending == item_id:
                del self._truncating[event_id]
        # The server cut the item's transcript to what was heard: fetch it for the history.
        event_id = self._event_id()
        self._refreshing[event_id] = item_id
        await self.send({"type": "conversation.item.retrieve", "item_id": item_id, "event_id": event_id})

    async def _on_retrieved(self, event: dict[str, Any]) -> None:
        item_id = event["item"].get("id")
        for event_id, pending in list(self._refreshing.items()):
            if pending == item_id:
                del self._refreshing[event_id]

    async def _on_response_created(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        if response.get("conversation_id", "default") is None:
            return  # out-of-band: not ours to play or interrupt
        self._active = _ResponseState(
            id=response.get("id", ""), audio="audio" in (response.get("output_modalities") or ["audio"])
        )
        self._expecting_response = False
        self._response_request = None

    async def _on_output_item_added(self, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if self._active is not None and event.get("response_id") == self._active.id and item.get("type") == "message":
            self._active.messages.append(item.get("id", ""))

    async def _on_audio_delta(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        if item_id in self._interrupted:
            return  # audio of an item the user cut off is never played
        pcm16 = base64.b64decode(event["delta"])
        self._audio_items.add(item_id)
        self.player.play(item_id, pcm16)
        if self.options.keep_audio:
            self._audio.setdefault(item_id, []).append(pcm16)

    async def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        if self._active is not None and response.get("id") == self._active.id:
            self._active = None
        self.responses.append(response)
        calls = [o for o in response.get("output") or [] if o.get("type") == "function_call"]
        if response.get("status") != "completed" or not calls or self.tools is None:
            if not calls:
                self._tool_rounds = 0
            return
        assert self._tg is not None
        self._tools_running += 1  # counted before the task starts, so idle() never flickers
        task = self._tg.create_task(self._run_tools(calls))
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _run_tools(self, calls: list[dict[str, Any]]) -> None:
        """Run the calls, return their outputs, and ask for the answer that uses them (reference 6.4)."""
        try:
            assert self.tools is not None
            for call in calls:
                output = await self.tools.call(call.get("name", ""), call.get("arguments", ""))
                item = {"type": "function_call_output", "call_id": call.get("call_id"), "output": output}
                await self.send({"type": "conversation.item.create", "item": item})
            self._tool_rounds += 1
            choice = self._followup_tool_choice()
            await self.create_response({"tool_choice": choice} if choice is not None else None)
        finally:
            self._tools_running -= 1
            await self._notify()

    def _followup_tool_choice(self) -> str | None:
        if self._tool_rounds >= MAX_TOOL_ROUNDS:
            return "none"
        if self.options.followup_tool_choice is not None:
            return self.options.followup_tool_choice
        forced = self.options.tool_choice not in ("auto", "none")
        return "none" if forced else None

    _HANDLERS: ClassVar[dict[str, Callable[[Assistant, dict[str, Any]], Awaitable[None]]]] = {
        "session.created": _on_session_event,
        "session.updated": _on_session_event,
        "error": _on_error,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "input_audio_buffer.committed": _on_committed,
        "conversation.item.truncated": _on_truncated,
        "conversation.item.retrieved": _on_retrieved,
        "response.created": _on_response_created,
        "response.output_item.added": _on_output_item_added,
        "response.output_audio.delta": _on_audio_delta,
        "response.done": _on_response_done,
    }


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
    await assistant.wait_until(
        lambda: len(assistant.responses) > responses_before and assistant.idle(), timeout_s=timeout_s
    )
    new = [item for item in assistant.history.items() if item.id not in known]
    answers = [i for i in new if i.type == "message" and i.role == "assistant"]
    return TurnResult(
        user=[i.text for i in new if i.type == "message" and i.role == "user"],
        assistant=[i.text for i in answers],
        audio=assistant.answer_audio([i.id for i in answers]),
        responses=assistant.responses[responses_before:],
    )
