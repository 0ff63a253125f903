"""The live calls of a server: each one a peer connection, its media, and the connection that drives
its session, from the answer to the end.

A call ends, and everything it holds (peer, UDP ports, tracks, session, its admission place) is freed
at once, when:

- the session's connection ends (the session closed it, expired, went idle, or crashed: 1011's log);
- the caller hangs up (:meth:`CallRegistry.hangup`, ``POST /v1/realtime/calls/{id}/hangup``);
- the peer goes: its ``pc.close()`` is seen within milliseconds, a vanished peer when ICE consent
  fails (about 30 s, reference section 2), the data channel's close at once;
- ICE never connects: the watchdog ends a call not connected ``connect_timeout_s`` after its answer
  (an offer posted and never followed, or a peer that cannot reach any of our candidates);
- the server shuts down (:meth:`CallRegistry.close_all`).

Its connection's transport is a :class:`~openrealtime.runtime.fanout.FanoutTransport` in front of
the data channel, so sidebands (``GET /v1/realtime?call_id=``) can attach to the call while it lives
(:meth:`Call.attach`); the call's end closes them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from openrealtime.runtime.connection import Connection
from openrealtime.runtime.fanout import FanoutTransport
from openrealtime.runtime.ports import Transport
from openrealtime.webrtc.channel import CHANNEL_LABEL, DataChannelTransport
from openrealtime.webrtc.media import CallMedia
from openrealtime.webrtc.peer import answer
from openrealtime.webrtc.ports import UdpPorts

log = logging.getLogger(__name__)

CALL_ID_PREFIX = "rtc_"
CONNECT_TIMEOUT_S = 30.0  # as Hugging Face's speech-to-speech: ICE must connect within this of the answer
CLOSE_TIMEOUT_S = 5.0  # at shutdown, how long calls get to end before they are cancelled

StartConnection = Callable[[Transport, CallMedia], Connection]


@dataclass
class Call:
    """One live call."""

    id: str
    peer: RTCPeerConnection
    transport: DataChannelTransport
    media: CallMedia
    fanout: FanoutTransport
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def attach(self, sideband: Transport) -> bool:
        """Serve ``sideband`` the call's events, and the session what it sends, until it leaves or
        the call ends (:meth:`FanoutTransport.serve`); ``False`` if the call has ended already."""
        return await self.fanout.serve(sideband)


class CallRegistry:
    """The calls of one server, by id (``rtc_`` and 32 hex digits).

    Args:
        ice: The peer connections' ICE configuration (:func:`~openrealtime.webrtc.peer.ice_configuration`).
        connect_timeout_s: How long after its answer a call may take to connect.
        udp_ports: The UDP ports the calls' ICE binds (``None``: any, as the kernel picks).
    """

    def __init__(
        self, ice: RTCConfiguration, *, connect_timeout_s: float = CONNECT_TIMEOUT_S, udp_ports: UdpPorts | None = None
    ) -> None:
        self._ice = ice
        self._udp_ports = udp_ports
        self._connect_timeout_s = connect_timeout_s
        self._calls: dict[str, Call] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def get(self, call_id: str) -> Call | None:
        """The live call ``call_id``, if there is one."""
        return self._calls.get(call_id)

    async def open(self, offer_sdp: str, start: StartConnection, on_end: Callable[[], None]) -> tuple[str, str]:
        """Answer ``offer_sdp`` and start the call: ``start`` builds the connection that drives its
        session over the call's transport and media; ``on_end`` runs once the call has ended.

        Returns:
            The call's id and the SDP answer.

        Raises:
            BadOffer: The offer cannot be read or answered (nothing was started; ``on_end`` is not run).
            PortRangeExhausted: No UDP port of the range is free (likewise).
        """
        call_id = CALL_ID_PREFIX + secrets.token_hex(16)
        peer = RTCPeerConnection(self._ice)
        media = CallMedia()
        transport = DataChannelTransport(lambda: peer.close())
        call = Call(call_id, peer, transport, media, FanoutTransport(transport))

        @peer.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == CHANNEL_LABEL:
                call.transport.attach(channel)
            else:
                log.info("call %s: data channel %r ignored (events go on %r)", call_id, channel.label, CHANNEL_LABEL)

        @peer.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                media.listen(track)

        @peer.on("connectionstatechange")
        def on_state() -> None:
            state = peer.connectionState
            log.debug("call %s: %s", call_id, state)
            if state == "connected":
                call.connected.set()
            elif state in ("failed", "closed"):
                call.transport.end()

        try:
            sdp = await answer(peer, offer_sdp, media.track, self._udp_ports)
        except Exception:
            await media.stop()
            await peer.close()
            raise
        if peer.sctp is None:  # an audio-only offer: the session runs, its events go nowhere
            call.transport.discard()
        connection = start(call.fanout, media)
        self._calls[call_id] = call
        call.task = asyncio.get_running_loop().create_task(self._run(call, connection, on_end))
        return call_id, sdp

    async def _run(self, call: Call, connection: Connection, on_end: Callable[[], None]) -> None:
        watchdog = asyncio.get_running_loop().create_task(self._watchdog(call))
        try:
            await connection.run()
        finally:
            watchdog.cancel()
            call.transport.end()
            call.fanout.end()  # its sidebands close (1000) once what was queued for them is sent
            self._calls.pop(call.id, None)
            call.media.detach()
            try:
                await call.media.stop()
                await call.peer.close()
            finally:
                call.peer.remove_all_listeners()  # its handlers hold the call: no cycle left behind
                on_end()

    async def _watchdog(self, call: Call) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await call.connected.wait()
        except TimeoutError:
            log.warning("call %s did not connect within %g s; ending it", call.id, self._connect_timeout_s)
            call.transport.end()

    async def hangup(self, call_id: str) -> bool:
        """End call ``call_id`` and wait until it has freed everything; ``False`` if there is no such call."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        call.transport.end()
        if call.task is not None:
            await asyncio.wait([call.task])
        return True

    async def close_all(self) -> None:
        """End every call (server shutdown)."""
        tasks = [call.task for call in self._calls.values() if call.task is not None]
        for call in list(self._calls.values()):
            call.transport.end()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
