"""One connection's events on several transports: a WebRTC call's data channel (the primary) and the
sidebands attached to the call (``GET /v1/realtime?call_id=rtc_...``, reference 1.4: "two active
connections to the same Realtime session").

:class:`FanoutTransport` is the :class:`~openrealtime.runtime.connection.Transport` of the call's
connection, in front of its primary:

- :meth:`~FanoutTransport.send` gives each server event to every sideband attached at that moment
  (each into its own bounded outbox, never waiting), then sends it on the primary (which may wait:
  the data channel's backpressure is the call's). A sideband sees the session from the moment it
  attaches: no replay, and no ``session.created`` of its own (the session was created with the call;
  a ``session.update`` answers with the whole config in ``session.updated``).
- :meth:`~FanoutTransport.receive` merges what the primary and the sidebands send, each in its own
  order: a sideband's ``session.update``, ``conversation.item.create`` of a ``function_call_output``
  or ``response.create`` goes into the same session as the caller's events. The session answers on
  every transport (an ``error`` too: the session does not know who sent what).
- The call ends with its primary: ``None`` from the primary ends the connection, whose close (or
  :meth:`~FanoutTransport.end`, when the call ends another way) closes every sideband after what was
  queued for it (1000, or the session's own code: 1001 at expiry, 1011 for our bug). A sideband
  that leaves detaches on its own; the call goes on.
- Backpressure: a sideband that does not read is not the call's problem. Its outbox holds
  ``OUTBOX_LIMIT`` events and ``OUTBOX_LIMIT_BYTES`` (the connection's own bounds); a sideband
  that lets it fill is dropped and closed with 1008, as the connection closes a WebSocket client
  that does not read, and the call never waits for it. What sidebands send waits in a shared queue
  of ``SIDEBAND_INBOX_LIMIT`` frames; a full one makes their readers wait (their next frames stay in
  their sockets), never the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from openrealtime.runtime.outbox import (
    CLOSE_NORMAL,
    CLOSE_TOO_SLOW,
    DRAIN_TIMEOUT_S,
    OUTBOX_LIMIT,
    OUTBOX_LIMIT_BYTES,
)
from openrealtime.runtime.ports import Transport, close_reason

log = logging.getLogger(__name__)

SIDEBAND_INBOX_LIMIT = 64  # sidebands' frames not yet taken by the session, all sidebands together
CALL_ENDED = "call ended"


class Sideband:
    """One sideband's transport, with its own bounded outbox; served by :meth:`FanoutTransport.serve`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._outbox: deque[str] = deque()
        self._outbox_chars = 0
        self._queued = asyncio.Event()
        self._close: tuple[int, str] | None = None  # close with this once the outbox is sent
        self.dropped = False  # it did not read: closed with 1008, its outbox thrown away
        # Set when it is to stop being served: it left, was dropped, its send failed, or the call ends.
        self.settled = asyncio.Event()

    @property
    def closing(self) -> bool:
        """The call has ended: it closes once its outbox is sent."""
        return self._close is not None

    def offer(self, text: str) -> None:
        """Queue a server event; never waits. A full outbox drops the sideband."""
        if self._close is not None:
            return
        if self._outbox and (len(self._outbox) >= OUTBOX_LIMIT or self._outbox_chars + len(text) > OUTBOX_LIMIT_BYTES):
            log.warning("a sideband is not reading the call's events; closing it with %d", CLOSE_TOO_SLOW)
            self.dropped = True
            self._outbox.clear()
            self._outbox_chars = 0
            self._close = (CLOSE_TOO_SLOW, "sideband too slow: outbox full")
            self.settled.set()
            return
        self._outbox.append(text)
        self._outbox_chars += len(text)
        self._queued.set()

    def finish(self, code: int, reason: str) -> None:
        """The call is over: close with ``code`` once what is queued has been sent."""
        if self._close is None:
            self._close = (code, reason)
            self._queued.set()
            self.settled.set()

    async def write(self) -> None:
        """Send the outbox in order, then the close once one is due."""
        while True:
            while not self._outbox:
                if self._close is not None:
                    code, reason = self._close
                    with contextlib.suppress(Exception):
                        await self.transport.close(code, close_reason(reason))
                    return
                self._queued.clear()
                await self._queued.wait()
            text = self._outbox.popleft()
            self._outbox_chars -= len(text)
            await self.transport.send(text)


class FanoutTransport:
    """A call's transport: its primary (the data channel) and the sidebands attached to it."""

    def __init__(self, primary: Transport) -> None:
        self.primary = primary
        self._sidebands: set[Sideband] = set()
        self._from_sidebands: asyncio.Queue[str | bytes] = asyncio.Queue(SIDEBAND_INBOX_LIMIT)
        self._primary_next: asyncio.Task[str | bytes | None] | None = None
        self._ended: tuple[int, str] | None = None

    @property
    def sidebands(self) -> int:
        """Sidebands attached now."""
        return len(self._sidebands)

    async def receive(self) -> str | bytes | None:
        """The next frame of the primary or of any sideband; ``None`` once the primary has gone."""
        if self._primary_next is None:
            self._primary_next = asyncio.ensure_future(self.primary.receive())
        primary_next = self._primary_next
        if self._from_sidebands.empty():
            sideband_next = asyncio.ensure_future(self._from_sidebands.get())
            try:
                await asyncio.wait({primary_next, sideband_next}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not sideband_next.done():
                    sideband_next.cancel()
            if sideband_next.done() and not sideband_next.cancelled():
                return sideband_next.result()
        else:
            return self._from_sidebands.get_nowait()
        self._primary_next = None
        return primary_next.result()

    async def send(self, text: str) -> None:
        for sideband in list(self._sidebands):
            sideband.offer(text)
        await self.primary.send(text)

    async def close(self, code: int, reason: str) -> None:
        """The session closes the call: its sidebands with it (a slow caller's 1008 is not theirs)."""
        self.end(CLOSE_NORMAL if code == CLOSE_TOO_SLOW else code, reason or CALL_ENDED)
        await self.primary.close(code, reason)

    def end(self, code: int = CLOSE_NORMAL, reason: str = CALL_ENDED) -> None:
        """The call is over: every sideband closes after what is queued for it; no more attach."""
        if self._ended is None:
            self._ended = (code, reason)
        for sideband in self._sidebands:
            sideband.finish(*self._ended)
        if self._primary_next is not None:
            self._primary_next.cancel()
            self._primary_next = None

    async def serve(self, transport: Transport) -> bool:
        """Attach ``transport`` as a sideband and serve it until it leaves, is dropped or the call
        ends (it is closed then). ``False`` if the call had ended already (nothing was sent)."""
        if self._ended is not None:
            return False
        sideband = Sideband(transport)
        self._sidebands.add(sideband)
        try:
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read(sideband))
                writer = tg.create_task(self._write(sideband))
                await sideband.settled.wait()
                self._sidebands.discard(sideband)  # from now on it gets nothing more
                reader.cancel()
                if sideband.dropped or not sideband.closing:  # dropped, gone, or its send failed
                    writer.cancel()
                elif not (await asyncio.wait([writer], timeout=DRAIN_TIMEOUT_S))[0]:
                    writer.cancel()  # it stopped reading while the call said goodbye
                    sideband.dropped = True
                if sideband.dropped:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(DRAIN_TIMEOUT_S):
                            await transport.close(CLOSE_TOO_SLOW, "sideband too slow: outbox full")
        finally:
            self._sidebands.discard(sideband)
        return True

    async def _read(self, sideband: Sideband) -> None:
        while (frame := await sideband.transport.receive()) is not None:
            await self._from_sidebands.put(frame)  # waits while the session is behind
        sideband.settled.set()  # it left: nothing more to send it

    async def _write(self, sideband: Sideband) -> None:
        try:
            await sideband.write()
        except Exception:  # it vanished mid-send: it leaves, the call goes on
            log.info("a sideband's send failed; detaching it")
        finally:
            sideband.settled.set()
