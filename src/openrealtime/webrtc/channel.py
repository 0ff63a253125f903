"""A call's ``oai-events`` data channel as the connection's :class:`~openrealtime.runtime.connection.Transport`.

The client opens the channel (``pc.createDataChannel("oai-events")``, in-band, ordered, reliable)
before its offer; every JSON event travels on it both ways, as text, in the WebSocket's format
(reference 1.3). The connection that drives the session does not know the difference:

- :meth:`DataChannelTransport.receive` gives the channel's messages in order; a binary message goes
  through as ``bytes``, so the session's ``invalid_event`` error answers it, as on a WebSocket. It
  gives ``None`` once the channel or the call has ended. A peer that sends far faster than the session
  takes (more than ``INBOUND_LIMIT`` messages or ``INBOUND_LIMIT_BYTES`` waiting) ends the call: SCTP
  delivers every message at once, there is no socket to leave them in.
- :meth:`~DataChannelTransport.send` waits for the channel to open (``session.created`` is queued
  before it does), then sends, and waits while more than ``HIGH_WATER_BYTES`` are buffered for the
  peer (backpressure: the connection's outbox fills behind it, and a peer that reads nothing is closed
  by the connection, as a WebSocket client is). An event larger than the peer takes (a browser offers
  ``a=max-message-size:262144``; aiortc refuses larger with ``ValueError``) would be lost: the call's
  offer is read with a larger limit (:func:`~openrealtime.webrtc.peer.widened_offer`), and an event
  still too large becomes a small ``error`` event naming it.
- :meth:`~DataChannelTransport.close` ends the call (WebRTC has no close code: the session's last
  ``error`` event, if any, has said why).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from aiortc import RTCDataChannel

from openrealtime.protocol.codec import new_event_id

log = logging.getLogger(__name__)

CHANNEL_LABEL = "oai-events"
INBOUND_LIMIT = 1024  # messages from the peer not yet taken by the session
INBOUND_LIMIT_BYTES = 64 * 1024 * 1024  # as the WebSocket's inbox (runtime/connection.py)
HIGH_WATER_BYTES = 1024 * 1024  # buffered for the peer before send waits
LOW_WATER_BYTES = 256 * 1024  # ... until it falls to this
FLUSH_TIMEOUT_S = 1.0  # at the end, how long the last events may take to leave
TOO_LARGE_CODE = "event_too_large"


class DataChannelTransport:
    """The events of one call, on its ``oai-events`` channel once the client has opened it."""

    def __init__(self, end_call: Callable[[], Awaitable[None]]) -> None:
        self._end_call = end_call
        self._channel: RTCDataChannel | None = None
        self._open = asyncio.Event()  # set when the channel opens, or the call ends first
        self._received: deque[str | bytes] = deque()
        self._received_bytes = 0
        self._arrived = asyncio.Event()
        self._ended = False
        self._discarding = False
        self._room = asyncio.Event()
        self._room.set()

    @property
    def ended(self) -> bool:
        return self._ended

    def discard(self) -> None:
        """The call has no data channel (an audio-only offer): its events go nowhere, and nothing
        waits for a channel that can never open."""
        self._discarding = True
        self._open.set()

    def attach(self, channel: RTCDataChannel) -> None:
        """The client's ``oai-events`` channel (opened, as aiortc hands it over)."""
        self._channel = channel
        channel.bufferedAmountLowThreshold = LOW_WATER_BYTES
        channel.on("message", self._on_message)
        channel.on("close", self.end)
        channel.on("bufferedamountlow", self._room.set)
        if channel.readyState == "open":
            self._open.set()
        else:
            channel.on("open", self._open.set)

    def end(self) -> None:
        """The call is over: ``receive`` gives ``None`` once what came before is taken."""
        self._ended = True
        self._arrived.set()
        self._open.set()
        self._room.set()

    def _on_message(self, message: str | bytes) -> None:
        if self._ended:
            return
        size = len(message)
        if len(self._received) >= INBOUND_LIMIT or self._received_bytes + size > INBOUND_LIMIT_BYTES:
            log.warning("call peer sends events faster than its session takes them; ending the call")
            self.end()
            return
        self._received.append(message)
        self._received_bytes += size
        self._arrived.set()

    async def receive(self) -> str | bytes | None:
        while not self._received:
            if self._ended:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        message = self._received.popleft()
        self._received_bytes -= len(message)
        return message

    async def send(self, text: str) -> None:
        await self._open.wait()
        if self._discarding and not self._ended:
            return
        channel = self._channel
        if self._ended or channel is None or channel.readyState != "open":
            raise ConnectionError("the call's data channel is closed")
        try:
            channel.send(text)
        except ValueError as exc:  # larger than the peer takes: say so, in an event it can take
            log.warning("server event of %d characters too large for the data channel: %s", len(text), exc)
            channel.send(_too_large(text, str(exc)))
        while channel.bufferedAmount > HIGH_WATER_BYTES and not self._ended:
            self._room.clear()
            await self._room.wait()

    async def close(self, code: int, reason: str) -> None:
        """End the call once what was sent has left (or ``FLUSH_TIMEOUT_S`` has passed)."""
        channel = self._channel
        if channel is not None and not self._ended and channel.bufferedAmount:
            channel.bufferedAmountLowThreshold = 0  # "low" now means: all of it has left
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_TIMEOUT_S):
                    await self._room.wait()
        self.end()
        await self._end_call()


def _too_large(text: str, why: str) -> str:
    kind = "?"
    with contextlib.suppress(ValueError):
        kind = str(json.loads(text).get("type", "?"))
    error = {
        "type": "server_error",
        "code": TOO_LARGE_CODE,
        "message": f"A '{kind}' event of {len(text)} characters could not be sent on the data channel "
        f"and was dropped: {why}.",
        "param": None,
        "event_id": None,
    }
    return json.dumps({"type": "error", "event_id": new_event_id(), "error": error}, separators=(",", ":"))
