"""A WebRTC call's hang-up and sideband landing on another front door (issue 15): two servers on one
test-started Redis, an aiortc caller on door A, the hang-up and the sideband sent to door B, which
forwards them to A (server/forwarding.py). Fake engines."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.forwarding import FORWARDED_HEADER, door_url
from openrealtime.server.settings import Settings
from openrealtime.state.call_directory import RedisCallDirectory, open_call_directory
from tests.conftest import TIMEOUT_S
from tests.state.redis_server import redis_server
from tests.webrtc.test_calls import KEY, engines, peer
from tests.webrtc.test_sideband import attached, call_id_of, next_event, sideband

__all__ = ["engines"]

BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@contextlib.asynccontextmanager
async def doors(engines: EngineSet, redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = Settings(port=0, api_key=KEY, state_url=redis_url)
    async with (
        running_server(settings, engines=engines) as a,
        running_server(settings, engines=engines) as b,
        httpx.AsyncClient(base_url=a.replace("ws://", "http://"), timeout=TIMEOUT_S) as door_a,
        httpx.AsyncClient(base_url=b.replace("ws://", "http://"), timeout=TIMEOUT_S) as door_b,
    ):
        yield door_a, door_b


async def test_a_sideband_and_a_hang_up_on_door_b_reach_the_call_on_door_a(engines: EngineSet, redis_url: str) -> None:
    async with doors(engines, redis_url) as (door_a, door_b), peer() as client:
        reply = await client.call(door_a, key=KEY)
        assert reply.status_code == 201, reply.text
        await client.next("session.created", timeout_s=TIMEOUT_S)
        call_id = call_id_of(reply)

        relayed = await sideband(door_b, call_id)  # relayed by B to A
        updated = await attached(relayed, "Updated through door B.")
        assert updated["session"]["instructions"] == "Updated through door B."
        seen = await client.next("session.updated", timeout_s=TIMEOUT_S)
        assert seen["session"]["instructions"] == "Updated through door B."  # the caller on A sees it

        hung_up = await door_b.post(f"/v1/realtime/calls/{call_id}/hangup", headers=BEARER)
        assert hung_up.status_code == 200, hung_up.text
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await next_event(relayed, "never")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000  # the call's end, passed on by the relay

        again = await door_b.post(f"/v1/realtime/calls/{call_id}/hangup", headers=BEARER)
        assert again.status_code == 404  # A's answer: it holds the call no more
        assert again.json()["error"]["code"] == "call_not_found"
        late = await sideband(door_b, call_id)
        error = await next_event(late, "error")
        assert error["error"]["code"] == "call_not_found"
        with pytest.raises(websockets.ConnectionClosed) as refused:
            await late.recv()
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 4000


async def test_a_relayed_sideband_that_leaves_leaves_the_call_running(engines: EngineSet, redis_url: str) -> None:
    async with doors(engines, redis_url) as (door_a, door_b), peer() as client:
        reply = await client.call(door_a, key=KEY)
        await client.next("session.created", timeout_s=TIMEOUT_S)
        first = await sideband(door_b, call_id_of(reply))
        await attached(first, "First.")
        await first.close()  # the relay closes its socket to door A; the call goes on
        second = await sideband(door_b, call_id_of(reply))
        assert (await attached(second, "Second."))["session"]["instructions"] == "Second."
        seen = await client.next("session.updated", timeout_s=TIMEOUT_S)
        while seen["session"]["instructions"] != "Second.":
            seen = await client.next("session.updated", timeout_s=TIMEOUT_S)
        await second.close()
        assert (await door_b.post(f"/v1/realtime/calls/{call_id_of(reply)}/hangup", headers=BEARER)).is_success


async def test_a_call_whose_door_is_gone_is_not_found_and_a_forwarded_request_is_never_forwarded(
    engines: EngineSet, redis_url: str
) -> None:
    directory = RedisCallDirectory.from_url(redis_url)
    await directory.place("rtc_" + "1" * 32, "http://127.0.0.1:9", 60)  # a door that answers nothing
    try:
        async with doors(engines, redis_url) as (door_a, door_b), peer() as client:
            gone = await door_b.post(f"/v1/realtime/calls/rtc_{'1' * 32}/hangup", headers=BEARER)
            assert (gone.status_code, gone.json()["error"]["code"]) == (404, "call_not_found")
            ws = await sideband(door_b, "rtc_" + "1" * 32)
            assert (await next_event(ws, "error"))["error"]["code"] == "call_not_found"

            reply = await client.call(door_a, key=KEY)
            await client.next("session.created", timeout_s=TIMEOUT_S)
            hop = await door_b.post(
                f"/v1/realtime/calls/{call_id_of(reply)}/hangup", headers={**BEARER, FORWARDED_HEADER: "1"}
            )
            assert hop.status_code == 404  # B holds no such call, and a forwarded request goes no further
            assert (await door_a.post(f"/v1/realtime/calls/{call_id_of(reply)}/hangup", headers=BEARER)).is_success
    finally:
        await directory.close()


async def test_a_door_needs_the_key_before_it_forwards(engines: EngineSet, redis_url: str) -> None:
    async with doors(engines, redis_url) as (door_a, door_b), peer() as client:
        reply = await client.call(door_a, key=KEY)
        await client.next("session.created", timeout_s=TIMEOUT_S)
        refused = await door_b.post(f"/v1/realtime/calls/{call_id_of(reply)}/hangup", headers={"Authorization": "x"})
        assert refused.status_code == 401
        assert (await door_b.post(f"/v1/realtime/calls/{call_id_of(reply)}/hangup", headers=BEARER)).is_success


def test_the_advertised_url() -> None:
    assert door_url(Settings(advertise_url="http://10.0.0.5:8000/")) == "http://10.0.0.5:8000"
    assert door_url(Settings(host="10.1.2.3", port=8000)) == "http://10.1.2.3:8000"
    assert door_url(Settings(host="0.0.0.0", port=8000), ("10.9.8.7", 8000)) == "http://10.9.8.7:8000"
    assert door_url(Settings(host="127.0.0.1", port=0), ("127.0.0.1", 41234)) == "http://127.0.0.1:41234"
    assert door_url(Settings(host="::1", port=8000)) == "http://[::1]:8000"
    assert door_url(Settings(host="10.1.2.3", port=443, ssl_certfile="c.pem", ssl_keyfile="k.pem")) == (
        "https://10.1.2.3:443"
    )


def test_only_a_redis_state_url_has_a_call_directory() -> None:
    assert open_call_directory(None) is None
    assert open_call_directory("memory://") is None
    assert isinstance(open_call_directory("redis://127.0.0.1:1/0"), RedisCallDirectory)
