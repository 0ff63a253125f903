"""The peer's settings and the offer's reading, without a network."""

from __future__ import annotations

import aioice.ice
import pytest

from openrealtime.server.calls import parse_ice_servers
from openrealtime.webrtc import peer as peer_module
from openrealtime.webrtc.peer import (
    MAX_MESSAGE_BYTES,
    BadOffer,
    check_offer,
    default_hosts,
    ice_configuration,
    use_host_addresses,
    widened_offer,
)


def test_no_stun_unless_configured() -> None:
    assert ice_configuration(parse_ice_servers(None)).iceServers == []
    [server] = ice_configuration(parse_ice_servers('[{"urls": "stun:stun.example.org:3478"}]')).iceServers
    assert server.urls == "stun:stun.example.org:3478"
    for bad in ('{"urls": "stun:x"}', '[{"url": "stun:x"}]', "[1]"):
        with pytest.raises(ValueError, match="ice_servers"):
            parse_ice_servers(bad)


def test_ice_gathers_on_loopback_when_the_server_is_bound_there() -> None:
    assert default_hosts("127.0.0.1", None) == ["127.0.0.1"]
    assert default_hosts("0.0.0.0", None) is None
    assert default_hosts("0.0.0.0", "10.0.0.2, 192.168.1.4") == ["10.0.0.2", "192.168.1.4"]


def test_host_addresses_are_set_for_the_process_and_restored() -> None:
    original = aioice.ice.get_host_addresses
    try:
        use_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
        use_host_addresses(None)
        assert aioice.ice.get_host_addresses is peer_module._original_host_addresses  # aioice's own
    finally:
        aioice.ice.get_host_addresses = original


def test_the_offers_message_size_is_widened() -> None:
    offer = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=max-message-size:262144\r\n"
    assert f"a=max-message-size:{MAX_MESSAGE_BYTES}\r\n" in widened_offer(offer)


@pytest.mark.parametrize("sdp", ["", "hello", "v=0\r\ns=-\r\n"])
def test_what_is_plainly_not_an_offer_is_refused(sdp: str) -> None:
    with pytest.raises(BadOffer):
        check_offer(sdp)
