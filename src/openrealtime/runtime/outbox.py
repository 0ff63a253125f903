"""The server events queued for one client, and the task that sends them in order.

Part of :class:`~openrealtime.runtime.connection.Connection` (whose module docstring tells the
connection's queues together). The outbox holds ``OUTBOX_LIMIT`` events and ``OUTBOX_LIMIT_BYTES``
(what a client asks for can be far larger than what it sends: each ``conversation.item.retrieve`` of
a large item is a few bytes in and the whole item out). One event always gets in when none waits.
When it is full the session loop waits in :meth:`Outbox.put` for the writer before it queues more,
so a client that reads as fast as it can gets every event of a burst. A client that takes no event
for ``SEND_STALL_TIMEOUT_S`` does not read: it is closed with 1008. The closing frame waits its turn
behind a full outbox for up to ``DRAIN_TIMEOUT_S`` (:meth:`Outbox.goodbye`), so a session's own
close (``session.close`` -> 1000) is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from openrealtime.runtime.ports import Transport, close_reason
from openrealtime.session.commands import CloseConnection

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 2048  # queued server events before the session loop waits for the client to read
# Queued server events in characters (JSON is ASCII). One event always gets in when none waits, whatever
# its size: the session's own limits (a conversation's size, a frame's) govern that.
OUTBOX_LIMIT_BYTES = 16 * 1024 * 1024
# RFC 6455 section 7.4.1: 1008 is "policy violation": a client that does not read its events.
CLOSE_TOO_SLOW = 1008
CLOSE_NORMAL = 1000
DRAIN_TIMEOUT_S = 5.0  # how long a closing connection waits for the client to take its last events
SEND_STALL_TIMEOUT_S = 5.0  # a full outbox of which the client takes nothing for this long: not reading


class Outbox:
    """One client's queued server events (bounded by count and characters), sent by :meth:`run`.

    Args:
        transport: Where the events go.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        # Room for every event the session loop may queue, plus the closing frame.
        self._queue: asyncio.Queue[str | CloseConnection] = asyncio.Queue(maxsize=OUTBOX_LIMIT + 1)
        self._events = 0  # queued or being sent: a frame counts until the client has taken it
        self.chars = 0  # characters of the events queued or being sent
        self._sent = asyncio.Event()  # set each time a send completes (or fails)
        self._failed = False
        self.too_slow = False  # the client took nothing for SEND_STALL_TIMEOUT_S with the outbox full

    async def put(self, frame: str) -> bool:
        """Queue ``frame`` once there is room; False if the client is gone or does not read."""
        while self._events and (self._events >= OUTBOX_LIMIT or self.chars + len(frame) > OUTBOX_LIMIT_BYTES):
            if self._failed:
                return False
            self._sent.clear()
            try:
                async with asyncio.timeout(SEND_STALL_TIMEOUT_S):
                    await self._sent.wait()
            except TimeoutError:
                log.warning("client is not reading its events; closing with %d", CLOSE_TOO_SLOW)
                self.too_slow = True
                return False
        self._events += 1
        self.chars += len(frame)
        self._queue.put_nowait(frame)
        return True

    async def run(self, *, on_sent: Callable[[], None], on_gone: Callable[[], None]) -> None:
        """The writer: send each event in turn, until the closing frame or a failed send; ``on_sent``
        after each event the client took (the connection's activity clock), ``on_gone`` once if a
        send fails (the client vanished mid-send). The connection's callbacks are held only while
        this runs: the outbox never refers back to its connection (a closed one is freed by
        reference counting alone)."""
        while True:
            item = await self._queue.get()
            if isinstance(item, CloseConnection):
                with contextlib.suppress(Exception):
                    await self._transport.close(item.code, close_reason(item.reason))
                return
            try:
                await self._transport.send(item)
            except Exception:  # the client vanished mid-send: the reader will see it too
                log.info("send failed; client gone")
                self._failed = True
                self._sent.set()
                on_gone()
                return
            self._events -= 1
            self.chars -= len(item)
            on_sent()
            self._sent.set()

    async def goodbye(self, writer: asyncio.Task[None], close: CloseConnection) -> None:
        """Send what is queued, then the closing frame; it waits its turn, but only so long."""
        if writer.done():  # a send failed: the client is gone, there is no one to say goodbye to
            return
        self._queue.put_nowait(close)  # the queue keeps a place for it
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await writer
        except TimeoutError:  # the client stopped reading while we were saying goodbye
            writer.cancel()
            await self.close_now(CLOSE_TOO_SLOW, "client too slow")

    async def close_now(self, code: int, reason: str) -> None:
        """Close the transport without sending what is queued (bounded by ``DRAIN_TIMEOUT_S``)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await self._transport.close(code, reason)
