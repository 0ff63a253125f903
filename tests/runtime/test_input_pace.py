"""Input audio faster than real time is bulk work (issue 10, flood B)."""

from __future__ import annotations

import asyncio
import time

import pytest

from openrealtime.runtime import input_pace
from openrealtime.runtime.input_pace import BULK_LEAD_S, BULK_PENDING_LIMIT, InputPace


def test_audio_at_real_time_is_never_bulk() -> None:
    pace = InputPace()
    for step in range(600):  # a minute of 100 ms chunks, each on time
        pace.received(0.1, step * 0.1)
        assert not pace.bulk(step * 0.1)


def test_a_whole_question_sent_at_once_is_not_bulk_but_a_flood_is() -> None:
    pace = InputPace()
    pace.received(4.0, 0.0)  # a 4 s clip in one append
    assert not pace.bulk(0.0)
    flood = InputPace()
    for step in range(20):  # ten times real time: 1 s of audio every 0.1 s
        flood.received(1.0, step * 0.1)
    assert flood.bulk(2.0)


def test_the_lead_drains_at_real_time_once_the_flood_stops() -> None:
    pace = InputPace()
    pace.received(BULK_LEAD_S + 3.0, 0.0)
    assert pace.bulk(0.0)
    assert pace.bulk(2.9)
    assert not pace.bulk(3.1)  # three seconds later it is back within the bound
    pace.received(0.1, 3.1)
    assert not pace.bulk(3.1)


async def test_a_bulk_sender_waits_for_one_of_its_decodes_before_the_next_frame() -> None:
    pace = InputPace()
    pace.received(BULK_LEAD_S + 5.0, time.monotonic())
    waiting = asyncio.create_task(pace.room(BULK_PENDING_LIMIT))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # its frames wait in its socket
    pace.decoded()
    await asyncio.wait_for(waiting, 1.0)
    assert pace.waits == 1


async def test_a_live_sender_or_a_bulk_one_with_few_decodes_never_waits() -> None:
    live = InputPace()
    live.received(0.1, time.monotonic())
    await asyncio.wait_for(live.room(BULK_PENDING_LIMIT + 5), 0.01)
    bulk = InputPace()
    bulk.received(BULK_LEAD_S + 5.0, time.monotonic())
    await asyncio.wait_for(bulk.room(BULK_PENDING_LIMIT - 1), 0.01)
    assert live.waits == bulk.waits == 0


async def test_a_wait_ends_after_its_bound_whatever_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(input_pace, "BULK_WAIT_MAX_S", 0.05)
    pace = InputPace()
    pace.received(BULK_LEAD_S + 5.0, time.monotonic())
    await asyncio.wait_for(pace.room(BULK_PENDING_LIMIT), 1.0)  # no decode ended: read on anyway
