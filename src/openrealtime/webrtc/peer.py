"""The server's side of one call's peer connection: ICE settings, the offer read, the answer made.

- **No STUN by default.** aiortc's default configuration asks Google's STUN server
  (``rtcicetransport.py``): a DNS lookup and a packet to the internet per call, which an offline
  server must not make, and which can stall gathering. The server's ICE servers are a setting
  (``ice_servers``, a JSON list of ``RTCIceServer``), ``[]`` unless set: host candidates only, which is
  what loopback and a LAN need.
- **Which addresses.** aioice gathers one UDP port on every local address except ``127.0.0.1``
  (``aioice/ice.py: get_host_addresses``), so on a loopback-only host a call cannot connect at all
  (reference 5.1). :func:`use_host_addresses` sets the addresses ICE gathers, for the whole process
  (aioice has no per-connection hook): a server bound to loopback gathers on ``127.0.0.1`` only.
- **The answer carries its candidates.** :func:`answer` sets the offer, then the answer as the local
  description, which gathers the host candidates before it returns, so the answer needs no trickle;
  a browser's offer, posted right after ``setLocalDescription``, usually has no candidates, and aiortc
  learns the browser's from its connectivity checks (peer-reflexive).
- **Which ports.** With the ``webrtc_udp_ports`` setting, the answer's host candidates are bound
  in that range (:mod:`~openrealtime.webrtc.ports`: aioice has no range of its own); a range with
  no free port left fails the answer with :class:`~openrealtime.webrtc.ports.PortRangeExhausted`.
- **Events larger than 256 KiB.** Browsers offer ``a=max-message-size:262144`` and aiortc refuses to
  send more to them; Chromium takes larger messages all the same (the prototype got 1 MB through,
  reference 5.6), so the offer's limit is raised to ``MAX_MESSAGE_BYTES`` before it is read
  (:func:`widened_offer`, as LocalAI does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from openrealtime.webrtc.ports import PortRangeExhausted, UdpPorts, ports_for

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the connection's outbox holds at most this much (runtime/connection.py)
_MAX_MESSAGE_SIZE = re.compile(r"^a=max-message-size:\d+", re.MULTILINE)
_original_host_addresses = aioice.ice.get_host_addresses


class BadOffer(ValueError):
    """The offer is not an SDP offer this server can answer (the client's fault: a 400)."""


def ice_configuration(servers: list[dict[str, Any]]) -> RTCConfiguration:
    """The calls' ICE configuration with ``servers`` (the ``ice_servers`` setting, read by
    :func:`openrealtime.server.calls.parse_ice_servers`); none: host candidates only."""
    ice = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in servers]
    return RTCConfiguration(iceServers=ice)


def use_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather ICE host candidates on ``addresses`` only (``None``: every address but loopback, aioice's
    own choice). Process-wide: aioice reads its addresses from one module function."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_host_addresses
        return
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def default_hosts(bind_host: str, hosts_setting: str | None) -> list[str] | None:
    """The addresses ICE gathers: the ``webrtc_hosts`` setting (comma-separated); else ``127.0.0.1``
    for a server bound to loopback (a caller there is local), else every address (``None``)."""
    if hosts_setting:
        return [h.strip() for h in hosts_setting.split(",") if h.strip()]
    if bind_host in ("127.0.0.1", "localhost", "::1"):
        return ["127.0.0.1"]
    return None


def widened_offer(sdp: str) -> str:
    """``sdp`` with its data channel's ``max-message-size`` raised to ``MAX_MESSAGE_BYTES``."""
    return _MAX_MESSAGE_SIZE.sub(f"a=max-message-size:{MAX_MESSAGE_BYTES}", sdp)


def check_offer(sdp: str) -> None:
    """Refuse what is plainly not an SDP offer before aiortc reads it.

    Raises:
        BadOffer: It does not start with ``v=0`` or has no media section.
    """
    text = sdp.lstrip()
    if not text.startswith("v=0"):
        raise BadOffer("The SDP offer must start with 'v=0'.")
    if "\nm=" not in text:
        raise BadOffer("The SDP offer has no media section (m=audio or m=application).")


async def answer(
    peer: RTCPeerConnection, offer_sdp: str, track: MediaStreamTrack, udp_ports: UdpPorts | None = None
) -> str:
    """Set ``offer_sdp`` as the remote description, send ``track`` on its audio (if it has audio), and
    return the answer (with its candidates, on ports of ``udp_ports`` if given).

    Raises:
        BadOffer: aiortc cannot read the offer or answer it.
        PortRangeExhausted: ``udp_ports`` has no free port left.
    """
    check_offer(offer_sdp)
    with ports_for(udp_ports):  # aiortc makes the call's ICE connection in setRemoteDescription
        try:
            await peer.setRemoteDescription(RTCSessionDescription(sdp=widened_offer(offer_sdp), type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError... on malformed SDP
            raise BadOffer(f"The SDP offer could not be read: {exc or type(exc).__name__}.") from exc
    if any(t.kind == "audio" for t in peer.getTransceivers()):
        peer.addTrack(track)  # on the offer's audio transceiver: sendrecv, with a=msid for the browser
    try:
        await peer.setLocalDescription(await peer.createAnswer())  # gathers: binds the ports
    except PortRangeExhausted:
        raise
    except Exception as exc:  # e.g. no codec in common
        raise BadOffer(f"The SDP offer could not be answered: {exc or type(exc).__name__}.") from exc
    local = peer.localDescription
    assert local is not None
    return local.sdp
