"""A call's fan-out transport over in-memory transports: sends reach every sideband without waiting for
any, frames merge, the call's end closes its sidebands, a sideband that does not read is dropped."""

from __future__ import annotations

import asyncio
import json

import pytest

from openrealtime.runtime import fanout as fanout_module
from openrealtime.runtime.fanout import FanoutTransport
from tests.conftest import TIMEOUT_S
from tests.runtime.test_connection import MemoryTransport


def event(index: int) -> str:
    return json.dumps({"type": "session.updated", "n": index})


async def attached(fan: FanoutTransport, count: int = 1) -> None:
    """Let the ``serve`` task just created run up to its registration (the first thing it does)."""
    await asyncio.sleep(0)
    assert fan.sidebands == count


async def test_events_reach_the_primary_and_every_sideband_and_frames_merge() -> None:
    primary, side = MemoryTransport(), MemoryTransport()
    fan = FanoutTransport(primary)
    async with asyncio.TaskGroup() as tg:
        served = tg.create_task(fan.serve(side))
        await attached(fan)
        await fan.send(event(1))
        await side.wait_count("session.updated", 1)
        assert primary.sent == side.sent == [{"type": "session.updated", "n": 1}]
        side.incoming.put_nowait("from the sideband")
        assert await fan.receive() == "from the sideband"
        primary.incoming.put_nowait("from the caller")
        assert await fan.receive() == "from the caller"
        side.incoming.put_nowait(None)  # the sideband leaves; the call goes on
        assert await served is True
        assert fan.sidebands == 0
        await fan.send(event(2))
        assert len(primary.sent) == 2
        assert len(side.sent) == 1
        assert side.closed is None
        primary.incoming.put_nowait(None)
        assert await fan.receive() is None  # the call ends with its primary


@pytest.mark.parametrize(("code", "expected"), [(1000, 1000), (1001, 1001), (1008, 1000)])
async def test_the_call_closing_closes_its_sidebands_after_their_events(code: int, expected: int) -> None:
    primary, side = MemoryTransport(), MemoryTransport()
    fan = FanoutTransport(primary)
    served = asyncio.create_task(fan.serve(side))
    await attached(fan)
    await fan.send(event(1))
    await fan.close(code, "bye")
    assert await served is True
    assert side.sent == [{"type": "session.updated", "n": 1}]
    assert side.closed == (expected, "bye")
    assert primary.closed == (code, "bye")
    assert await fan.serve(MemoryTransport()) is False  # nothing attaches to an ended call


async def test_a_sideband_that_does_not_read_is_dropped_and_sends_never_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout_module, "OUTBOX_LIMIT", 4)
    primary, stuck = MemoryTransport(), MemoryTransport(stall_sends=True)
    fan = FanoutTransport(primary)
    served = asyncio.create_task(fan.serve(stuck))
    await attached(fan)
    async with asyncio.timeout(TIMEOUT_S):
        for index in range(20):
            await fan.send(event(index))
    assert len(primary.sent) == 20
    assert await served is True
    assert stuck.closed == (1008, "sideband too slow: outbox full")
    assert fan.sidebands == 0


async def test_a_sideband_that_stops_reading_at_the_end_is_dropped_after_the_drain_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "DRAIN_TIMEOUT_S", 0.05)
    primary, stuck = MemoryTransport(), MemoryTransport(stall_sends=True)
    fan = FanoutTransport(primary)
    served = asyncio.create_task(fan.serve(stuck))
    await attached(fan)
    await fan.send(event(1))
    fan.end()
    async with asyncio.timeout(TIMEOUT_S):
        assert await served is True
    assert stuck.closed == (1008, "sideband too slow: outbox full")


async def test_a_sideband_whose_send_fails_detaches() -> None:
    primary, broken = MemoryTransport(), MemoryTransport(fail_sends=True)
    fan = FanoutTransport(primary)
    served = asyncio.create_task(fan.serve(broken))
    await attached(fan)
    await fan.send(event(1))
    assert await served is True
    assert fan.sidebands == 0
    assert len(primary.sent) == 1
