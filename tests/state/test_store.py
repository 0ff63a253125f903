"""The state stores: the memory store (the default) and Redis hold and return the same thing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from openrealtime.state.records import ItemRecord, Meta, StateChange, dump_order, pcm16_samples, samples_pcm16
from openrealtime.state.store import MemoryStateStore, StateStore, open_store

SID = "sess_abc"


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def _item(item_id: str, text: str, status: str = "completed") -> str:
    item = {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": status,
        "content": [{"type": "input_text", "text": text}],
    }
    return ItemRecord(item, audio_ms=0).dumps()


def _first_write() -> StateChange:
    return StateChange(
        meta=Meta("realtime", {"type": "realtime", "instructions": "Be brief."}, "conv_1").dumps(),
        order=dump_order(["item_1", "item_2"]),
        items={"item_1": _item("item_1", "hello"), "item_2": _item("item_2", "again")},
        audio={"item_1": samples_pcm16(np.array([0.0, 0.5, -0.5], dtype=np.float32))},
    )


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    url = request.getfixturevalue("redis_url")
    redis_store = open_store(url)
    yield redis_store
    await redis_store.delete(SID)
    await redis_store.close()


async def test_a_session_reads_back_as_written_part_by_part(store: StateStore) -> None:
    await store.save(SID, _first_write(), ttl_s=60)
    await store.save(SID, StateChange(items={"item_2": _item("item_2", "changed")}), ttl_s=60)
    state = await store.load(SID)
    assert state is not None
    assert state.meta == Meta("realtime", {"type": "realtime", "instructions": "Be brief."}, "conv_1")
    assert [r.item["content"][0]["text"] for r in state.ordered()] == ["hello", "changed"]
    assert np.allclose(state.audio["item_1"], [0.0, 0.5, -0.5], atol=1e-4)
    # A deletion drops the item and its audio; the order is rewritten with it.
    await store.save(SID, StateChange(order=dump_order(["item_2"]), removed=["item_1"]), ttl_s=60)
    state = await store.load(SID)
    assert state is not None
    assert state.order == ("item_2",)
    assert set(state.items) == {"item_2"}
    assert state.audio == {}


async def test_unknown_and_deleted_sessions_are_none(store: StateStore) -> None:
    assert await store.load("sess_never") is None
    await store.save(SID, _first_write(), ttl_s=60)
    await store.delete(SID)
    assert await store.load(SID) is None


async def test_redis_state_expires_after_the_grace_window_from_the_last_write(redis_url: str) -> None:
    store = open_store(redis_url)
    try:
        await store.save(SID, _first_write(), ttl_s=0.3)
        await asyncio.sleep(0.2)
        await store.save(SID, StateChange(), ttl_s=0.3)  # an empty write only extends it
        await asyncio.sleep(0.2)
        assert await store.load(SID) is not None
        await asyncio.sleep(0.3)
        assert await store.load(SID) is None
    finally:
        await store.close()


async def test_memory_state_expires_and_is_bounded() -> None:
    clock = Clock()
    store = MemoryStateStore(max_sessions=2, clock=clock)
    await store.save(SID, _first_write(), ttl_s=10)
    clock.now_s += 9
    await store.save(SID, StateChange(), ttl_s=10)
    clock.now_s += 9
    assert await store.load(SID) is not None
    clock.now_s += 2
    assert await store.load(SID) is None
    for name in ("sess_a", "sess_b", "sess_c"):
        await store.save(name, _first_write(), ttl_s=10)
    assert len(store) == 2
    assert await store.load("sess_a") is None  # the one written longest ago went first


def test_pcm16_round_trip_clips() -> None:
    samples = np.array([2.0, -2.0, 0.25], dtype=np.float32)
    assert np.allclose(pcm16_samples(samples_pcm16(samples)), [1.0, -1.0, 0.25], atol=1e-4)


def test_open_store_refuses_other_schemes() -> None:
    assert isinstance(open_store(None), MemoryStateStore)
    assert isinstance(open_store("memory://"), MemoryStateStore)
    with pytest.raises(ValueError, match="state-url"):
        open_store("postgres://x")


async def test_the_memory_store_is_bounded_in_bytes_too() -> None:
    store = MemoryStateStore(max_bytes=5_000)
    for name in ("sess_a", "sess_b"):
        await store.save(name, _first_write(), ttl_s=60)
    assert 0 < store.bytes < 5_000
    big = StateChange(audio={"item_1": b"\0" * 4_000})
    await store.save("sess_c", _first_write(), ttl_s=60)
    await store.save("sess_c", big, ttl_s=60)
    assert store.bytes <= 5_000
    assert await store.load("sess_a") is None  # the oldest went first
    assert await store.load("sess_c") is not None
    await store.save("sess_c", StateChange(removed=["item_1"]), ttl_s=60)
    await store.delete("sess_c")
    await store.delete("sess_b")
    assert store.bytes == 0
