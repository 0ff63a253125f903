"""The calls' UDP port range (``webrtc_udp_ports``): the setting read, the ports handed out, a call's
host candidates inside the range and working end to end over loopback, and a range used up."""

from __future__ import annotations

import random
import re
import socket

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.calls import parse_udp_ports
from openrealtime.webrtc.ports import PortRangeExhausted, UdpPorts
from tests.conftest import TIMEOUT_S, quiet, tone
from tests.webrtc.peer import RATE_HZ
from tests.webrtc.test_calls import ANSWER, KEY, peer, server

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", re.MULTILINE)


@pytest.fixture
def engines() -> EngineSet:
    voice = ToneSynthesizer()
    return EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(ANSWER),
        synthesizers={"en": voice, "*": voice},
    )


def free_range(size: int) -> tuple[int, int]:
    """A run of ``size`` UDP ports free on 127.0.0.1 now (other tests and programs share the host)."""
    for _ in range(100):
        first = random.randrange(41_000, 60_000)
        try:
            held = [_bound(first + i) for i in range(size)]
        except OSError:
            continue
        for sock in held:
            sock.close()
        return first, first + size - 1
    raise RuntimeError("no free UDP port range")


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def test_the_setting_is_read_when_the_server_starts() -> None:
    assert parse_udp_ports(None) is None
    assert parse_udp_ports("") is None
    assert parse_udp_ports("40000-40100") == (40000, 40100)
    assert parse_udp_ports(" 40000 ") == (40000, 40000)
    for bad in ("40100-40000", "0-10", "40000-70000", "a-b", "40000-", "-5"):
        with pytest.raises(ValueError, match="webrtc_udp_ports"):
            parse_udp_ports(bad)


def test_ports_are_handed_out_in_turn_and_the_range_can_run_out() -> None:
    first, last = free_range(3)
    ports = UdpPorts(first, last)
    socks = [ports.bind("127.0.0.1") for _ in range(3)]
    try:
        assert [s.getsockname()[1] for s in socks] == [first, first + 1, first + 2]
        with pytest.raises(PortRangeExhausted, match=f"{first}-{last}"):
            ports.bind("127.0.0.1")
        socks.pop(0).close()
        socks.append(ports.bind("127.0.0.1"))  # the one freed, found by walking on
        assert socks[-1].getsockname()[1] == first
    finally:
        for sock in socks:
            sock.close()


def test_a_port_another_program_holds_is_stepped_over() -> None:
    first, last = free_range(2)
    held = _bound(first)
    try:
        with UdpPorts(first, last).bind("127.0.0.1") as sock:
            assert sock.getsockname()[1] == first + 1
    finally:
        held.close()


def test_an_address_that_is_not_local_is_an_os_error_not_exhaustion() -> None:
    first, last = free_range(2)
    with pytest.raises(OSError, match=r"Errno") as info:
        UdpPorts(first, last).bind("192.0.2.1")  # TEST-NET-1: never a local address
    assert not isinstance(info.value, PortRangeExhausted)


async def test_a_calls_candidates_are_in_the_range_and_the_call_works(engines: EngineSet) -> None:
    first, last = free_range(4)
    async with server(engines, webrtc_udp_ports=f"{first}-{last}") as http, peer() as client:
        reply = await client.call(http, key=KEY)
        assert reply.status_code == 201
        candidates = _CANDIDATE.findall(reply.text)
        assert candidates, reply.text
        assert all(first <= int(port) <= last for _, port in candidates), candidates
        offered = _CANDIDATE.findall(client.pc.localDescription.sdp)
        assert not any(first <= int(port) <= last for _, port in offered)  # the client's own are not
        await client.next("session.created", timeout_s=TIMEOUT_S)
        client.mic.say(np.concatenate([tone(1000, rate_hz=RATE_HZ), quiet(1000, rate_hz=RATE_HZ)]))
        done = await client.next("response.done", timeout_s=TIMEOUT_S)
        assert done["response"]["status"] == "completed"
        await client.next("output_audio_buffer.stopped", timeout_s=TIMEOUT_S)
        assert np.abs(client.audio()).max() > 0.01  # the answer was heard over the ranged port


async def test_a_call_past_the_last_free_port_is_a_503_until_one_ends(engines: EngineSet) -> None:
    first, last = free_range(1)
    auth = {"Authorization": f"Bearer {KEY}"}
    async with server(engines, webrtc_udp_ports=f"{first}-{last}") as http:
        async with peer() as one:
            reply = await one.call(http, key=KEY)
            assert reply.status_code == 201
            async with peer() as two:
                busy = await two.call(http, key=KEY)
                assert busy.status_code == 503
                error = busy.json()["error"]
                assert error["code"] == "udp_ports_exhausted"
                assert f"{first}-{last}" in error["message"]
            health = (await http.get("/healthz", headers=auth)).json()
            assert health["active_sessions"] == 1  # the refused call's place was given back
            assert (await http.post(reply.headers["location"] + "/hangup", headers=auth)).status_code == 200
        async with peer() as three:
            assert (await three.call(http, key=KEY)).status_code == 201  # its port was freed at once


def test_serve_takes_the_range_as_a_flag_and_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from openrealtime.cli import build_parser
    from openrealtime.server.settings import Settings

    args = build_parser().parse_args(["serve", "--webrtc-udp-ports", "40000-40100"])
    assert args.webrtc_udp_ports == "40000-40100"
    monkeypatch.setenv("OPENREALTIME_WEBRTC_UDP_PORTS", "41000-41010")
    assert parse_udp_ports(Settings.load().webrtc_udp_ports) == (41000, 41010)
