"""The ``oai-events`` channel as a transport, over a stand-in channel (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from openrealtime.webrtc import channel as channel_module
from openrealtime.webrtc.channel import DataChannelTransport

LIMIT = 1000  # the stand-in peer's max-message-size


class StandInChannel:
    """What the transport uses of an aiortc ``RTCDataChannel``: sends are buffered until ``drain``."""

    label = "oai-events"

    def __init__(self, ready: str = "open") -> None:
        self.readyState = ready
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.sent: list[str] = []
        self.handlers: dict[str, Callable[..., Any]] = {}

    def on(self, name: str, handler: Callable[..., Any]) -> None:
        self.handlers[name] = handler

    def send(self, text: str) -> None:
        if len(text) > LIMIT:
            raise ValueError(f"Cannot send message of {len(text)} bytes")
        self.sent.append(text)
        self.bufferedAmount += len(text)

    def drain(self) -> None:
        """The peer took everything: aiortc emits bufferedamountlow when it falls to the threshold."""
        self.bufferedAmount = 0
        self.handlers["bufferedamountlow"]()


def transport() -> tuple[DataChannelTransport, list[bool]]:
    ended: list[bool] = []

    async def end_call() -> None:
        ended.append(True)

    return DataChannelTransport(end_call), ended


async def test_events_in_order_binary_as_bytes_then_none() -> None:
    t, _ = transport()
    ch = StandInChannel()
    t.attach(ch)  # type: ignore[arg-type]
    ch.handlers["message"]('{"type":"a"}')
    ch.handlers["message"](b"\x00\x01")
    assert await t.receive() == '{"type":"a"}'
    assert await t.receive() == b"\x00\x01"
    ch.handlers["close"]()
    assert await t.receive() is None


async def test_send_waits_for_the_channel_to_open() -> None:
    t, _ = transport()
    sending = asyncio.get_running_loop().create_task(t.send('{"type":"session.created"}'))
    await asyncio.sleep(0)
    assert not sending.done()
    ch = StandInChannel(ready="connecting")
    t.attach(ch)  # type: ignore[arg-type]
    ch.readyState = "open"
    ch.handlers["open"]()
    await sending
    assert ch.sent == ['{"type":"session.created"}']


async def test_an_event_too_large_for_the_peer_becomes_an_error_event() -> None:
    t, _ = transport()
    ch = StandInChannel()
    t.attach(ch)  # type: ignore[arg-type]
    await t.send(json.dumps({"type": "conversation.item.added", "text": "x" * 2000}))
    [sent] = ch.sent
    error = json.loads(sent)
    assert error["type"] == "error"
    assert error["error"]["code"] == "event_too_large"
    assert "'conversation.item.added'" in error["error"]["message"]


async def test_send_waits_while_too_much_is_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "HIGH_WATER_BYTES", 100)
    t, _ = transport()
    ch = StandInChannel()
    t.attach(ch)  # type: ignore[arg-type]
    sending = asyncio.get_running_loop().create_task(t.send("y" * 200))
    await asyncio.sleep(0)
    assert ch.sent
    assert not sending.done()  # over the high-water mark: waits for the peer
    ch.drain()
    await sending


async def test_a_flooding_peer_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "INBOUND_LIMIT", 3)
    t, _ = transport()
    ch = StandInChannel()
    t.attach(ch)  # type: ignore[arg-type]
    for _ in range(4):
        ch.handlers["message"]("{}")
    assert t.ended
    assert [await t.receive() for _ in range(4)] == ["{}", "{}", "{}", None]


async def test_close_ends_the_call_and_sends_no_more() -> None:
    t, ended = transport()
    ch = StandInChannel()
    t.attach(ch)  # type: ignore[arg-type]
    await t.close(1000, "")
    assert ended == [True]
    with pytest.raises(ConnectionError):
        await t.send("{}")


async def test_a_call_without_a_channel_discards_its_events() -> None:
    t, _ = transport()
    t.discard()
    await t.send('{"type":"session.created"}')  # does not wait for a channel that cannot open
    t.end()
    with pytest.raises(ConnectionError):
        await t.send("{}")
