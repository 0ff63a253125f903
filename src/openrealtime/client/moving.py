"""Keeping an assistant's conversation connected, as a mixin of
:class:`~openrealtime.client.assistant.Assistant` (whose state it uses, through :class:`_Assistant`).

One reader task (:meth:`SessionMoves._read_loop`) hands every server event to the assistant in order
and, when the socket closes unexpectedly, moves the conversation (:meth:`SessionMoves.reconnect`);
another (:meth:`SessionMoves._expiry_loop`) moves it a margin before the session's ``expires_at``,
between turns where it can. A move asks the same session back from the next of its doors
(:mod:`~openrealtime.client.opening`, :mod:`~openrealtime.client.failover`), or opens a new one with
the same ``session.update`` and the conversation replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import websockets

from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.failover import shutting_down_error
from openrealtime.client.opening import open_session
from openrealtime.client.resume import taken_over_error
from openrealtime.client.turns import Action, TurnTaking
from openrealtime.exceptions import ConnectionClosedError

if TYPE_CHECKING:
    from openrealtime.client.assistant import CallAudio
    from openrealtime.client.call import CallConnection

log = logging.getLogger(__name__)

RECONNECT_ATTEMPTS = 3
RECONNECT_BACKOFF_S = 0.5  # doubled after each failed attempt


class _Assistant(Protocol):
    """What of the assistant the mixin uses."""

    options: AssistantOptions
    turns: TurnTaking
    call_audio: CallAudio | None
    reconnects: int
    _update: dict[str, Any]
    _conn: RealtimeConnection | CallConnection | None
    _ready: asyncio.Event
    _rearm: asyncio.Event
    _reconnect_lock: asyncio.Lock
    _closing: bool

    @property
    def expires_at(self) -> float | None: ...

    def idle(self) -> bool: ...

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float) -> None: ...

    async def reconnect(self, *, lost: RealtimeConnection | CallConnection | None = None) -> None: ...

    async def _execute(self, actions: list[Action]) -> None: ...

    async def _notify(self) -> None: ...

    async def _handle(self, raw: dict[str, Any], at_s: float) -> None: ...


class SessionMoves:
    """The conversation moved between sessions, for :class:`~openrealtime.client.assistant.Assistant`."""

    _conn: RealtimeConnection | CallConnection | None  # set by the assistant (see _Assistant)

    async def reconnect(self: _Assistant, *, lost: RealtimeConnection | CallConnection | None = None) -> None:
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
            await self._execute(self.turns.abandon(lost=lost is not None))
            delay_s = RECONNECT_BACKOFF_S
            # A WebSocket's doors are retried, with backoff, by the failover policy itself.
            attempts = RECONNECT_ATTEMPTS if self.options.transport == "webrtc" else 1
            after = lost.door if isinstance(lost, RealtimeConnection) else None  # a door lost: try it last
            for attempt in range(1, attempts + 1):
                try:
                    self._conn = await open_session(
                        self.options, self._update, self.turns, self.call_audio, after=after
                    )
                    break
                except (OSError, TimeoutError, ConnectionClosedError, websockets.WebSocketException) as exc:
                    log.warning("reconnect attempt %d failed: %s", attempt, exc)
                    if attempt == attempts:
                        raise ConnectionClosedError(None, f"could not reconnect: {exc}") from exc
                    await asyncio.sleep(delay_s)  # back-off between attempts, not ordering
                    delay_s *= 2
            self.reconnects += 1
            self._ready.set()
            self._rearm.set()
        if old is not None and old is not lost:
            await old.close()
        await self._notify()

    async def _expiry_loop(self: _Assistant) -> None:
        while not self._closing:
            self._rearm.clear()
            wait_s = self.turns.reconnect_wait_s(time.time())
            if wait_s is None:
                if self.turns.expires_at is not None:
                    log.warning("the session expires within the reconnect margin; not reconnecting early")
                await self._rearm.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rearm.wait(), timeout=wait_s)
            if self._rearm.is_set():
                continue  # a new session or closing: recompute
            with contextlib.suppress(TimeoutError):  # move between turns if one comes soon enough
                await self.wait_until(self.idle, timeout_s=self.options.reconnect_margin_s / 2)
            if not self._closing:
                log.info("session expires at %s: moving the conversation to a new session", self.expires_at)
                await self.reconnect()

    async def _read_loop(self: _Assistant) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn = self._conn
            assert conn is not None
            taken_over = False
            async for event in conn:  # ends quietly when the socket closes
                if taken_over_error(event):
                    # Our own move resumed the session on a new connection; else another client did
                    # (then this one lets it go instead of taking it back).
                    taken_over = not self._reconnect_lock.locked()
                    continue
                if shutting_down_error(event):  # its door drains: 1012 follows, and we resume elsewhere
                    log.info("the server is draining; the session moves to another door")
                    continue
                await self._handle(event, loop.time())
            if taken_over:
                log.warning("another connection resumed this session; this assistant stops")
                return
            if self._closing:
                return
            if conn is self._conn:
                log.warning("the session closed (code %s); reconnecting", conn.close_code)
                await self.reconnect(lost=conn)
