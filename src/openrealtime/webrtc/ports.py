"""The UDP ports a call's ICE may bind (``--webrtc-udp-ports 40000-40100``), so a firewall or a
container can open exactly those.

aioice has no port range: ``Connection.get_component_candidates`` binds each host candidate with
``loop.create_datagram_endpoint(..., local_addr=(address, 0))``, an ephemeral port anywhere the
kernel likes. :class:`RangedConnection` is aioice's ``Connection`` with that one step replaced: each
host socket is bound by :class:`UdpPorts` to the next free port of the range (a cursor that walks the
range, so a port just freed is not handed straight out again to a new call), then handed to asyncio
as ``sock=``; server-reflexive candidates are asked for on those sockets as aioice does, and TURN
relays are left to aioice (their socket only talks to the TURN server). Everything else (checks,
consent, close) is aioice's own, on the same ``StunProtocol`` objects.

aiortc makes its ``Connection`` inside ``RTCPeerConnection.setRemoteDescription``, with no hook, so
:func:`install` puts :class:`RangedConnection` in its place for the process, and the range is
chosen per peer connection by a context variable (:func:`ports_for`) around the server's answer:
a connection made outside it (a client peer in the same process, a test's) binds ephemeral ports as
before. When every port of the range is taken on an address, the call's answer fails with
:class:`PortRangeExhausted` (a 503 to the caller), never a call without candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import logging
import socket
from collections.abc import Iterator
from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcicetransport
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

log = logging.getLogger(__name__)

STUN_TIMEOUT_S = 5  # aioice's own wait for a server-reflexive candidate
_RECEIVE_BUFFER_BYTES = aioice.turn.UDP_SOCKET_BUFFER_SIZE  # as aioice sets on its host sockets


class PortRangeExhausted(RuntimeError):
    """Every port of the range is bound on an address (by other calls or other programs)."""


class UdpPorts:
    """The range ``first``-``last`` (inclusive), handing out a bound UDP socket per request."""

    def __init__(self, first: int, last: int) -> None:
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"invalid UDP port range {first}-{last}")
        self.first, self.last = first, last
        self._cursor = 0

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def bind(self, address: str) -> socket.socket:
        """A UDP socket bound to ``address`` on the next free port of the range.

        Raises:
            PortRangeExhausted: Every port of the range is in use on ``address``.
            OSError: ``address`` cannot be bound at all (not a local address).
        """
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for step in range(self.size):
            offset = (self._cursor + step) % self.size
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, self.first + offset))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            self._cursor = (offset + 1) % self.size
            sock.setblocking(False)
            return sock
        raise PortRangeExhausted(
            f"Every UDP port of this server's WebRTC range {self} is in use on {address}: "
            "the server is at its limit of calls; try again when one ends."
        )


_PORTS: contextvars.ContextVar[UdpPorts | None] = contextvars.ContextVar("openrealtime_udp_ports", default=None)


class RangedConnection(aioice.ice.Connection):
    """aioice's ``Connection``, binding its host candidates in the range that was chosen (by
    :func:`ports_for`) when it was made; aioice's own binding when none was."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.udp_ports = _PORTS.get()

    async def get_component_candidates(
        self,
        component: int,
        addresses: list[str],
        timeout: int = STUN_TIMEOUT_S,  # noqa: ASYNC109 (aioice's signature)
    ) -> list[Candidate]:
        if self.udp_ports is None:
            return await super().get_component_candidates(component, addresses, timeout)
        hosts = [await self._host(component, address, self.udp_ports) for address in addresses]
        protocols = [p for p in hosts if p is not None]
        candidates = [p.local_candidate for p in protocols]
        stun = self.stun_server
        reflexive = [p for p in protocols if stun and ":" not in p.local_candidate.host]  # IPv4 only, as aioice
        asked = [aioice.ice.server_reflexive_candidate(p, stun) for p in reflexive if stun]
        found = await asyncio.gather(
            super().get_component_candidates(component, [], timeout),  # TURN only: no addresses
            *(asyncio.wait_for(ask, timeout) for ask in asked),
            return_exceptions=True,
        )
        for result in found[1:]:
            if isinstance(result, Candidate):
                candidates.append(result)
        if isinstance(found[0], list):
            candidates += found[0]
        elif isinstance(found[0], BaseException):
            raise found[0]
        return candidates

    async def _host(self, component: int, address: str, ports: UdpPorts) -> aioice.ice.StunProtocol | None:
        try:
            sock = ports.bind(address)
        except PortRangeExhausted:
            raise
        except OSError as exc:  # as aioice: an address that cannot be bound gives no candidate
            log.info("ICE could not bind %s in %s: %s", address, ports, exc)
            return None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER_BYTES)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: aioice.ice.StunProtocol(self), sock=sock)
        self._protocols.append(protocol)  # from here on, the connection's close frees the port
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=port,
            type="host",
        )
        return protocol


def install() -> None:
    """Make aiortc's ICE gatherers use :class:`RangedConnection` (process-wide; idempotent). It
    binds as aioice does unless made inside :func:`ports_for`."""
    aiortc.rtcicetransport.Connection = RangedConnection  # type: ignore[attr-defined]


@contextlib.contextmanager
def ports_for(ports: UdpPorts | None) -> Iterator[None]:
    """Peer connections' ICE made inside this block binds in ``ports`` (``None``: anywhere)."""
    if ports is not None:
        install()
    token = _PORTS.set(ports)
    try:
        yield
    finally:
        _PORTS.reset(token)
