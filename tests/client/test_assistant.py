"""The voice-assistant client: tool schemas, played-milliseconds bookkeeping and the conversation copy
(pure); barge-in, muting, tools and reconnection against a scripted stand-in server (exact events, no
models); and end to end against the real server with the real models."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import sys
import time
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from openrealtime.client.assistant import Assistant, Truncation, scripted_turn
from openrealtime.client.assistant_config import AssistantOptions, session_update
from openrealtime.client.audio_io import write_wav
from openrealtime.client.history import ConversationHistory, TranscriptPrinter
from openrealtime.client.playback import ClockPlayer, PlaybackLedger, SpeakerPlayer
from openrealtime.client.tools import ToolDefinitionError, ToolRegistry, function_tool, parse_docstring
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import server_event_from_dict
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, pcm

RATE_HZ = 24_000
SAMPLES_PER_MS = RATE_HZ // 1000


def audio_ms(ms: int) -> bytes:
    return pcm(np.full(ms * SAMPLES_PER_MS, 0.1, dtype=np.float32))


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


# --- tools ---------------------------------------------------------------------------------------


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def get_weather(
    city: str,
    days: int,
    unit: Unit = Unit.CELSIUS,
    detail: Literal["short", "long"] = "short",
    tags: list[str] | None = None,
    ratio: Annotated[float, "between 0 and 1"] = 0.5,
    alerts: bool = False,
) -> dict[str, Any]:
    """Get the weather forecast
    for a city.

    Args:
        city: The city, e.g. Paris.
        days (int): How many days ahead,
            counting today.
        unit: Temperature unit.
        detail: How much to say.
        tags: Extra topics.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit.value, "alerts": alerts}


def test_a_function_becomes_a_tool_schema_from_hints_and_docstring() -> None:
    tool = function_tool(get_weather)
    assert tool.definition() == {
        "type": "function",
        "name": "get_weather",
        "description": "Get the weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris."},
                "days": {"type": "integer", "description": "How many days ahead, counting today."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."},
                "detail": {"type": "string", "enum": ["short", "long"], "description": "How much to say."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Extra topics."},
                "ratio": {"type": "number", "description": "between 0 and 1"},
                "alerts": {"type": "boolean"},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    }


def test_schema_of_containers_unions_and_nullable_required_values() -> None:
    def f(pair: tuple[int, str], many: tuple[float, ...], table: dict[str, int], either: int | str, maybe: str | None):
        """F."""

    properties = function_tool(f).parameters["properties"]
    assert properties == {
        "pair": {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
        "many": {"type": "array", "items": {"type": "number"}},
        "table": {"type": "object", "additionalProperties": {"type": "integer"}},
        "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},  # no default: null is a real value
    }


def test_a_hint_without_a_json_schema_is_refused() -> None:
    def f(when: object) -> None:
        """F."""

    with pytest.raises(ToolDefinitionError):
        function_tool(f)


def test_docstring_without_sections_is_all_description() -> None:
    assert parse_docstring("  One line.\n\n  Two lines\n  here.  ") == ("One line. Two lines here.", {})


async def test_a_call_runs_sync_and_async_tools_and_reports_failures_as_outputs() -> None:
    async def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    def fail() -> None:
        """Fail."""
        raise RuntimeError("no network")

    registry = ToolRegistry.from_functions([get_weather, shout, fail])
    assert json.loads(await registry.call("get_weather", '{"city": "Oslo", "days": 2, "unit": "fahrenheit"}')) == {
        "city": "Oslo",
        "days": 2,
        "unit": "fahrenheit",
        "alerts": False,
    }
    assert await registry.call("shout", '{"text": "hi"}') == "HI"
    assert json.loads(await registry.call("fail", "{}")) == {"error": "RuntimeError: no network"}
    assert "invalid arguments" in json.loads(await registry.call("shout", '{"loud": true}'))["error"]
    assert "invalid arguments" in json.loads(await registry.call("shout", "[1]"))["error"]
    assert json.loads(await registry.call("nope", "{}")) == {"error": "unknown tool 'nope'"}


def test_a_module_file_registers_its_own_public_functions(tmp_path: Path) -> None:
    module = tmp_path / "my-tools.py"
    module.write_text(
        "from math import sqrt\n"
        "def add(a: int, b: int) -> int:\n    '''Add two numbers.'''\n    return a + b\n"
        "def _helper() -> None:\n    pass\n"
        "LIMIT = 3\n"
    )
    assert ToolRegistry.from_module(module).names == ["add"]
    module.write_text(module.read_text() + "def more(x: str) -> str:\n    return x\n__all__ = ['more']\n")
    assert ToolRegistry.from_module(module).names == ["more"]


# --- played milliseconds -------------------------------------------------------------------------


def test_ledger_counts_each_items_played_audio_on_one_timeline() -> None:
    ledger = PlaybackLedger(RATE_HZ)
    ledger.enqueue("a", 1000 * SAMPLES_PER_MS)
    ledger.enqueue("b", 500 * SAMPLES_PER_MS)
    ledger.enqueue("b", 500 * SAMPLES_PER_MS)  # merged with the segment before
    ledger.advance_to(1250 * SAMPLES_PER_MS + 23)
    assert (ledger.played_ms("a"), ledger.played_ms("b")) == (1000, 250)  # floored, never rounded up
    assert ledger.flush() == ["b"]
    assert (ledger.played_ms("b"), ledger.received_ms("b"), ledger.queued_samples) == (250, 1000, 0)
    ledger.advance_to(5000 * SAMPLES_PER_MS)  # nothing is queued: the position cannot run ahead
    ledger.enqueue("c", 100 * SAMPLES_PER_MS)
    assert ledger.played_ms("c") == 0


def test_clock_player_plays_at_real_time_pace_and_pauses_when_the_queue_runs_dry() -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    assert player.idle_s() == float("inf")
    player.play("a", audio_ms(400))
    clock.now_s += 0.25
    assert (player.playing, player.played_ms("a")) == (True, 250)
    clock.now_s += 10.0  # long after the end: played all, idle since it ended
    assert (player.playing, player.played_ms("a"), player.idle_s()) == (False, 400, pytest.approx(9.85))
    player.play("b", audio_ms(600))  # starts now, not back in time
    clock.now_s += 0.1
    assert player.played_ms("b") == 100
    assert player.stop() == ["b"]
    clock.now_s += 1.0
    assert (player.played_ms("b"), player.playing, player.idle_s()) == (100, False, pytest.approx(1.0))


def test_speaker_player_counts_what_the_device_callback_took(monkeypatch: pytest.MonkeyPatch) -> None:
    streams: list[Any] = []

    class RawOutputStream:  # stands in for PortAudio: the test plays the device's part
        def __init__(self, **kwargs: Any) -> None:
            self.callback = kwargs["callback"]
            self.blocksize = kwargs["blocksize"]
            streams.append(self)

        def start(self) -> None: ...
        def stop(self) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(RawOutputStream=RawOutputStream))
    player = SpeakerPlayer(RATE_HZ)
    device = streams[0]
    assert device.blocksize == 20 * SAMPLES_PER_MS
    player.play("a", audio_ms(30))
    block = bytearray(device.blocksize * 2)
    device.callback(block, device.blocksize, None, None)
    assert (player.played_ms("a"), player.playing) == (20, True)
    device.callback(block, device.blocksize, None, None)  # 10 ms of audio, then silence
    assert block[10 * SAMPLES_PER_MS * 2 :] == bytes(10 * SAMPLES_PER_MS * 2)
    assert (player.played_ms("a"), player.playing) == (30, False)
    player.play("b", audio_ms(100))
    device.callback(block, device.blocksize, None, None)
    assert player.stop() == ["b"]
    assert (player.played_ms("b"), player.ledger.received_ms("b")) == (20, 100)
    player.close()


# --- the conversation copy -----------------------------------------------------------------------


def item(item_id: str, role: str, part: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "status": status, "content": [part]}


def conversation_events() -> list[dict[str, Any]]:
    user = item("u1", "user", {"type": "input_audio", "transcript": None})
    return [
        {"type": "conversation.item.added", "previous_item_id": None, "item": user},
        {
            "type": "conversation.item.added",
            "previous_item_id": "u1",
            "item": item("a1", "assistant", {}, "in_progress"),
        },
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "Paris is"},
        {"type": "response.output_audio_transcript.done", "item_id": "a1", "transcript": "Paris is the capital."},
        {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1", "transcript": "Capital?"},
        {
            "type": "conversation.item.done",
            "previous_item_id": "a1",
            "item": {
                "id": "f1",
                "type": "function_call",
                "status": "completed",
                "name": "f",
                "call_id": "c1",
                "arguments": "{}",
            },
        },
        {
            "type": "conversation.item.added",
            "previous_item_id": "f1",
            "item": {"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "42"},
        },
    ]


def test_lines_come_out_in_turn_order_even_when_the_users_transcript_is_late() -> None:
    history = ConversationHistory()
    seen: list[str] = []
    for event in conversation_events()[:4]:
        history.feed(server_event_from_dict(event))
        seen += [i.line for i in history.ready()]
    assert seen == []  # the assistant is final, but the user's words are not known yet
    for event in conversation_events()[4:]:
        history.feed(server_event_from_dict(event))
        seen += [i.line for i in history.ready()]
    assert seen == ["Capital?", "Paris is the capital.", "f({})", "42"]


def test_replay_rebuilds_the_conversation_as_items_a_new_session_accepts() -> None:
    history = ConversationHistory()
    for event in conversation_events():
        history.feed(server_event_from_dict(event))
    added = {"type": "conversation.item.added", "previous_item_id": "o1", "item": item("u2", "user", {})}
    history.feed(server_event_from_dict(added))
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Capital?"}]}
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Paris is the capital."}],
    }
    assert history.replay_events() == [
        {"type": "conversation.item.create", "item": {"id": "u1", **user}},
        {"type": "conversation.item.create", "item": {"id": "a1", **answer}},
        {"type": "conversation.item.create",
         "item": {"id": "f1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}},
        {"type": "conversation.item.create",
         "item": {"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "42"}},
    ]  # fmt: skip


def test_a_truncated_answer_is_held_until_the_servers_copy_says_what_was_heard() -> None:
    history = ConversationHistory()
    events = conversation_events()
    history.feed(server_event_from_dict(events[0]))
    history.feed(server_event_from_dict(events[4]))
    history.feed(server_event_from_dict(events[1]))
    history.hold("a1")
    history.feed(server_event_from_dict(events[3]))
    done = {"type": "response.done", "response": {"status": "cancelled", "output": [{"id": "a1"}]}}
    history.feed(server_event_from_dict(done))
    assert [i.line for i in history.ready()] == ["Capital?"]
    history.feed(server_event_from_dict({"type": "conversation.item.truncated", "item_id": "a1", "audio_end_ms": 300}))
    history.feed(server_event_from_dict(
        {"type": "conversation.item.retrieved",
         "item": item("a1", "assistant", {"type": "output_audio", "transcript": "Paris"}, "incomplete")}
    ))  # fmt: skip
    assert [i.line for i in history.ready()] == ["Paris …"]


def test_the_printer_labels_lines() -> None:
    history = ConversationHistory()
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    printer = TranscriptPrinter(history, Sink())
    for event in conversation_events():
        history.feed(server_event_from_dict(event))
        printer(event, 0.0)
    assert "".join(lines) == "you: Capital?\nassistant: Paris is the capital.\ntool call: f({})\ntool result: 42\n"


def test_session_update_with_mute_mic_and_a_named_tool() -> None:
    tools = ToolRegistry.from_functions([get_weather])
    update = session_update(AssistantOptions(mute_mic=True, voice="marin", tool_choice="get_weather"), tools)
    session = update["session"]
    assert session["audio"]["input"]["turn_detection"] == {"type": "server_vad", "interrupt_response": False}
    assert session["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": RATE_HZ}, "voice": "marin"}
    assert session["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert [t["name"] for t in session["tools"]] == ["get_weather"]
    assert "instructions" not in session


# --- a scripted stand-in server ------------------------------------------------------------------


class FakeSession:
    """One connection to :class:`FakeServer`: what the client sent, and a way to push events."""

    def __init__(self, ws: ServerConnection, index: int, expires_at: float, *, refuse_updates: bool) -> None:
        self.ws = ws
        self.refuse_updates = refuse_updates
        self.index = index
        self.expires_at = expires_at
        self.received: list[dict[str, Any]] = []
        self.items: dict[str, dict[str, Any]] = {}
        self.changed = asyncio.Condition()
        self._ids = 0

    async def push(self, event: dict[str, Any]) -> None:
        self._ids += 1
        if event["type"] in ("conversation.item.added", "conversation.item.done"):
            self.items[event["item"]["id"]] = event["item"]
        await self.ws.send(json.dumps({"event_id": f"event_{self.index}_{self._ids}", **event}))

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT_S), self.changed:
            await self.changed.wait_for(lambda: any(predicate(e) for e in self.received))
        return next(e for e in self.received if predicate(e))

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == kind]

    async def answer(self, event: dict[str, Any]) -> None:
        """Reply to configuration and item events as OpenAI does (reference 4)."""
        kind = event["type"]
        if kind == "session.update" and self.refuse_updates:
            error = {"type": "invalid_request_error", "code": "invalid_value", "message": "no such voice"}
            await self.push({"type": "error", "error": {**error, "param": "session.audio.output.voice"}})
        elif kind == "session.update":
            session = {**event["session"], "id": f"sess_{self.index}", "expires_at": self.expires_at}
            await self.push({"type": "session.updated", "session": session})
        elif kind == "conversation.item.create":
            self._ids += 1
            new = {"id": f"item_{self.index}_{self._ids}", **event["item"], "status": "completed"}
            previous = list(self.items)[-1] if self.items else None
            await self.push({"type": "conversation.item.added", "previous_item_id": previous, "item": new})
            await self.push({"type": "conversation.item.done", "previous_item_id": previous, "item": new})
        elif kind == "conversation.item.truncate":
            fields = {k: event[k] for k in ("item_id", "content_index", "audio_end_ms")}
            await self.push({"type": "conversation.item.truncated", **fields})
        elif kind == "conversation.item.retrieve" and event["item_id"] in self.items:
            await self.push({"type": "conversation.item.retrieved", "item": self.items[event["item_id"]]})
        elif kind == "conversation.item.delete":
            self.items.pop(event["item_id"], None)
            await self.push({"type": "conversation.item.deleted", "item_id": event["item_id"]})


class FakeServer:
    """A Realtime endpoint that answers configuration and item events and lets the test push the rest."""

    def __init__(
        self, *, lifetime_s: Callable[[int], float] = lambda index: 3600.0, refuse_updates: bool = False
    ) -> None:
        self.refuse_updates = refuse_updates
        self.sessions: list[FakeSession] = []
        self.changed = asyncio.Condition()
        self._lifetime_s = lifetime_s
        self.url = ""

    async def _handler(self, ws: ServerConnection) -> None:
        index = len(self.sessions)
        session = FakeSession(ws, index, time.time() + self._lifetime_s(index), refuse_updates=self.refuse_updates)
        self.sessions.append(session)
        async with self.changed:
            self.changed.notify_all()
        created = {"type": "realtime", "id": f"sess_{index}", "expires_at": session.expires_at}
        await session.push({"type": "session.created", "session": created})
        async for frame in ws:
            event = json.loads(frame)
            session.received.append(event)
            await session.answer(event)
            async with session.changed:
                session.changed.notify_all()

    async def session(self, index: int) -> FakeSession:
        async with asyncio.timeout(TIMEOUT_S), self.changed:
            await self.changed.wait_for(lambda: len(self.sessions) > index)
        return self.sessions[index]

    async def __aenter__(self) -> FakeServer:
        self._server = await serve(self._handler, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with FakeServer() as server:
        yield server


async def start_answer(session: FakeSession, *chunks_ms: int, item_id: str = "item_A") -> None:
    """``response.created`` and an assistant item with ``chunks_ms`` of audio."""
    await session.push(
        {
            "type": "response.created",
            "response": {"id": "resp_1", "output_modalities": ["audio"], "conversation_id": "conv_1"},
        }
    )
    message = item(item_id, "assistant", {}, "in_progress")
    await session.push({"type": "response.output_item.added", "response_id": "resp_1", "item": message})
    await session.push({"type": "conversation.item.added", "previous_item_id": None, "item": message})
    for ms in chunks_ms:
        delta = {"response_id": "resp_1", "item_id": item_id, "output_index": 0, "content_index": 0}
        await session.push({"type": "response.output_audio.delta", **delta, "delta": _b64(audio_ms(ms))})  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def test_barge_in_stops_playback_and_truncates_to_the_exact_milliseconds_played(fake: FakeServer) -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    seen: list[str] = []
    async with Assistant(
        AssistantOptions(url=fake.url), player=player, on_event=lambda event, at_s: seen.append(event["type"])
    ) as assistant:
        session = await fake.session(0)
        await start_answer(session, 600, 400)
        await assistant.wait_until(lambda: player.ledger.received_ms("item_A") == 1000, timeout_s=TIMEOUT_S)
        clock.now_s += 0.3735  # 8964 samples heard: 373.5 ms, floored
        await session.push({"type": "input_audio_buffer.speech_started", "audio_start_ms": 5000, "item_id": "u2"})
        truncate = await session.wait_for(lambda e: e["type"] == "conversation.item.truncate")
        assert not player.playing
        assert player.ledger.queued_samples == 0
        assert {k: v for k, v in truncate.items() if k != "event_id"} == {
            "type": "conversation.item.truncate",
            "item_id": "item_A",
            "content_index": 0,
            "audio_end_ms": 373,
        }
        assert assistant.truncations == [Truncation("item_A", 373, 1000)]
        assert session.sent("response.cancel") == []  # the server interrupts on its own (the default)
        await start_answer(session, 200)  # late audio of the cut item is never played
        await assistant.wait_until(lambda: seen.count("response.output_audio.delta") == 3, timeout_s=TIMEOUT_S)
        assert player.ledger.received_ms("item_A") == 1000
        assert not player.playing
        await session.wait_for(lambda e: e["type"] == "conversation.item.retrieve")  # to learn what was heard


async def test_barge_in_before_any_audio_was_heard_deletes_the_item(fake: FakeServer) -> None:
    player = ClockPlayer(RATE_HZ, clock=FakeClock())  # the clock never moves: nothing is heard
    async with Assistant(AssistantOptions(url=fake.url), player=player) as assistant:
        session = await fake.session(0)
        await start_answer(session, 500)
        await assistant.wait_until(lambda: player.ledger.received_ms("item_A") == 500, timeout_s=TIMEOUT_S)
        await session.push({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u2"})
        delete = await session.wait_for(lambda e: e["type"] == "conversation.item.delete")
        assert delete["item_id"] == "item_A"
        assert session.sent("conversation.item.truncate") == []
        assert assistant.deletions == ["item_A"]


async def test_without_server_interruption_the_client_cancels_before_truncating(fake: FakeServer) -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    options = AssistantOptions(url=fake.url, turn_detection={"type": "server_vad", "interrupt_response": False})
    async with Assistant(options, player=player) as assistant:
        session = await fake.session(0)
        await start_answer(session, 1000)
        await assistant.wait_until(lambda: player.ledger.received_ms("item_A") == 1000, timeout_s=TIMEOUT_S)
        clock.now_s += 0.5
        await session.push({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u2"})
        await session.wait_for(lambda e: e["type"] == "conversation.item.truncate")
        kinds = [e["type"] for e in session.received if e["type"] != "session.update"]
        assert kinds == ["response.cancel", "conversation.item.truncate"]


async def test_mute_mic_drops_audio_while_the_assistant_speaks_and_during_the_cooldown(fake: FakeServer) -> None:
    clock = FakeClock()
    player = ClockPlayer(RATE_HZ, clock=clock)
    options = AssistantOptions(url=fake.url, mute_mic=True, mute_cooldown_ms=800)
    async with Assistant(options, player=player) as assistant:
        session = await fake.session(0)
        assert await assistant.send_audio(audio_ms(20))
        await start_answer(session, 1000)
        await assistant.wait_until(lambda: player.playing, timeout_s=TIMEOUT_S)
        assert not await assistant.send_audio(audio_ms(20))
        clock.now_s += 1.5  # 1.0 s of answer, then 0.5 s of the 0.8 s cooldown
        assert not await assistant.send_audio(audio_ms(20))
        clock.now_s += 0.31
        assert await assistant.send_audio(audio_ms(20))
        await session.wait_for(lambda e: len(session.sent("input_audio_buffer.append")) == 2)
        assert session.received[0]["session"]["audio"]["input"]["turn_detection"]["interrupt_response"] is False


async def test_a_completed_function_call_is_run_and_answered(fake: FakeServer, tmp_path: Path) -> None:
    module = tmp_path / "weather.py"
    module.write_text(
        "def get_weather(city: str) -> dict:\n"
        "    '''Get the current weather for a city.'''\n"
        "    return {'city': city, 'temp_c': 18}\n"
    )
    tools = ToolRegistry.from_module(module)
    async with Assistant(AssistantOptions(url=fake.url, tool_choice="required"), tools=tools) as assistant:
        session = await fake.session(0)
        call = {"id": "f1", "type": "function_call", "status": "completed", "name": "get_weather",
                "call_id": "call_1", "arguments": '{"city": "Paris"}'}  # fmt: skip
        await session.push({"type": "response.done", "response": {"id": "r1", "status": "completed",
                                                                   "output": [call]}})  # fmt: skip
        create = await session.wait_for(lambda e: e["type"] == "response.create")
        outputs = session.sent("conversation.item.create")
        assert [o["item"] for o in outputs] == [
            {"type": "function_call_output", "call_id": "call_1", "output": '{"city": "Paris", "temp_c": 18}'}
        ]
        assert create["response"] == {"tool_choice": "none"}  # a forced call is for its own turn only
        assert session.received.index(outputs[0]) < session.received.index(create)
        assert not assistant.idle()  # the follow-up answer is still to come


async def test_an_unexpected_close_reconnects_and_replays_the_conversation(fake: FakeServer) -> None:
    async with Assistant(AssistantOptions(url=fake.url)) as assistant:
        first = await fake.session(0)
        for event in conversation_events():
            await first.push(event)
        await assistant.wait_until(lambda: len(assistant.history.items()) == 4, timeout_s=TIMEOUT_S)
        await first.ws.close(1011, "server restart")
        second = await fake.session(1)
        await second.wait_for(lambda e: len(second.sent("conversation.item.create")) == 4)
        # It asked for its session back; a server without resume (OpenAI, this fake) opened a new one.
        assert second.ws.request is not None
        assert second.ws.request.path.endswith("&session_id=sess_0")
        assert second.received[0] == first.received[0]  # the same session.update
        assert [e["item"] for e in second.sent("conversation.item.create")] == [
            e["item"] for e in history_of(conversation_events()).replay_events()
        ]
        await assistant.wait_until(lambda: assistant.session.get("id") == "sess_1", timeout_s=TIMEOUT_S)
        assert assistant.reconnects == 1
        assert await assistant.send_audio(audio_ms(20))
        await second.wait_for(lambda e: e["type"] == "input_audio_buffer.append")


def history_of(events: list[dict[str, Any]]) -> ConversationHistory:
    history = ConversationHistory()
    for event in events:
        history.feed(server_event_from_dict(event))
    return history


async def test_the_session_moves_to_a_new_one_a_margin_before_it_expires() -> None:
    margin_s = 60.0
    # The first session expires just after the margin starts; the next one lives an hour.
    async with FakeServer(lifetime_s=lambda index: margin_s + 0.2 if index == 0 else 3600.0) as fake:
        options = AssistantOptions(url=fake.url, reconnect_margin_s=margin_s)
        async with Assistant(options) as assistant:
            first = await fake.session(0)
            await fake.session(1)
            await assistant.wait_until(lambda: assistant.reconnects == 1, timeout_s=TIMEOUT_S)
            async with asyncio.timeout(TIMEOUT_S):
                await first.ws.wait_closed()
            assert first.ws.close_code == 1000  # the client closed the old one, cleanly
            assert assistant.session["id"] == "sess_1"


async def test_a_server_that_refuses_the_session_is_reported() -> None:
    async with FakeServer(refuse_updates=True) as fake:
        with pytest.raises(ProtocolError, match="refused the session: no such voice"):
            async with Assistant(AssistantOptions(url=fake.url)):
                pass


# --- the real server with the real models --------------------------------------------------------


@pytest.fixture
async def base(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield f"{url}/v1/realtime?model=gpt-realtime"


def real_options(url: str, **overrides: Any) -> AssistantOptions:
    return AssistantOptions(url=url, transcription_model="gpt-4o-transcribe", keep_audio=True, **overrides)


@pytest.mark.real
async def test_a_spoken_question_is_answered_with_speech_and_a_transcript(base: str) -> None:
    from openrealtime.bench.speech import speak

    async with Assistant(real_options(base)) as assistant:
        turn = await scripted_turn(assistant, speak("What is the capital of France?"), realtime=False)
    assert "capital" in " ".join(turn.user).lower()
    assert [r["status"] for r in turn.responses] == ["completed"]
    assert turn.assistant[0].strip()
    assert len(turn.audio) / 2 / RATE_HZ > 0.5  # seconds of spoken answer
    assert assistant.errors == []


@pytest.mark.real
async def test_barge_in_during_the_answer_cancels_it_and_truncates_to_what_was_played(base: str) -> None:
    from openrealtime.bench.assistant import INTERRUPTION, LONG_ANSWER_INSTRUCTIONS, LONG_QUESTION, SimulatedMicrophone
    from openrealtime.bench.speech import speak

    events: list[dict[str, Any]] = []
    at_speech_start: list[tuple[bool, int]] = []

    def on_event(event: dict[str, Any], at_s: float) -> None:
        if event["type"] != "response.output_audio.delta":
            events.append(event)
        elif not any(e["type"] == "first_audio" for e in events):
            events.append({"type": "first_audio", "item_id": event["item_id"]})
        if event["type"] == "input_audio_buffer.speech_started" and any(e["type"] == "first_audio" for e in events):
            # Right after the client handled speech_started: is anything still playing or queued?
            at_speech_start.append((assistant.player.playing, assistant.player.ledger.queued_samples))

    mic = SimulatedMicrophone()
    assistant = Assistant(real_options(base, instructions=LONG_ANSWER_INSTRUCTIONS), on_event=on_event)
    async with assistant, asyncio.TaskGroup() as tg:
        tg.create_task(assistant.stream(mic.chunks()))
        try:
            await mic.say(speak(LONG_QUESTION))
            await assistant.wait_until(lambda: any(e["type"] == "first_audio" for e in events), timeout_s=TIMEOUT_S)
            await mic.say(speak(INTERRUPTION))
            await assistant.wait_until(
                lambda: any(e["type"] == "conversation.item.retrieved" for e in events), timeout_s=TIMEOUT_S
            )
        finally:
            mic.stop()
    answered = next(e["item_id"] for e in events if e["type"] == "first_audio")
    done = next(e["response"] for e in events if e["type"] == "response.done")
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "turn_detected")
    assert done["output"][0]["id"] == answered
    assert at_speech_start[0] == (False, 0)  # playback stopped and its queue flushed at once
    cut = assistant.truncations[0]
    assert cut.item_id == answered
    assert 0 < cut.audio_end_ms < cut.received_ms  # audio was still queued when it stopped
    truncated = next(e for e in events if e["type"] == "conversation.item.truncated")
    assert (truncated["item_id"], truncated["audio_end_ms"]) == (answered, cut.audio_end_ms)
    heard = next(e["item"] for e in events if e["type"] == "conversation.item.retrieved")["content"][0]
    assert len(heard["transcript"] or "") <= len(done["output"][0]["content"][0]["transcript"])
    assert assistant.errors == []


@pytest.mark.real
async def test_a_tool_round_trip_with_a_tools_module(base: str, tmp_path: Path) -> None:
    from openrealtime.bench.speech import speak

    module = tmp_path / "weather_tools.py"
    module.write_text(
        "CALLS: list[str] = []\n\n"
        "def get_weather(city: str) -> dict:\n"
        "    '''Get the current weather for a city.\n\n    Args:\n        city: The city name.\n    '''\n"
        "    CALLS.append(city)\n"
        "    return {'city': city, 'temp_c': 18, 'sky': 'cloudy'}\n"
    )
    tools = ToolRegistry.from_module(module)
    async with Assistant(real_options(base, tool_choice="required"), tools=tools) as assistant:
        turn = await scripted_turn(assistant, speak("What is the weather like in Paris today?"), realtime=False)
    call = turn.responses[0]["output"][0]
    assert (call["type"], call["name"]) == ("function_call", "get_weather")
    assert [json.loads(call["arguments"])["city"]] == sys.modules["openrealtime_tools_weather_tools"].CALLS
    outputs = [i for i in assistant.history.items() if i.type == "function_call_output"]
    assert [json.loads(o.text)["temp_c"] for o in outputs] == [18]
    assert turn.responses[-1]["status"] == "completed"
    assert turn.audio
    assert turn.assistant[-1].strip()


@pytest.mark.real
async def test_reconnecting_resumes_the_session_with_its_conversation(base: str) -> None:
    """Our server resumes the session (issue 15): the same id, every earlier item retrievable with
    its words, nothing replayed, and the next answer follows the earlier ones."""
    from openrealtime.bench.speech import speak

    committed: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any], at_s: float) -> None:
        if event["type"] == "input_audio_buffer.committed":
            committed.append(event)

    async with Assistant(real_options(base), on_event=on_event) as assistant:
        await scripted_turn(assistant, speak("What is the capital of France?"), realtime=False)
        before = [(i.id, i.role, i.text) for i in assistant.history.items()]
        old_session = assistant.session["id"]
        await assistant.reconnect()
        assert assistant.session["id"] == old_session  # resumed, not a new session
        for item_id, _, text in before:
            item = await assistant.retrieve(item_id)
            part = item["content"][0]
            assert (part.get("transcript") or part.get("text")) == text
            assert item["status"] == "completed"
        await scripted_turn(assistant, speak("And what is the capital of Italy?"), realtime=False)
    assert committed[-1]["previous_item_id"] == before[-1][0]  # the new turn follows the earlier answer
    ids = [i.id for i in assistant.history.items()]
    assert ids[: len(before)] == [b[0] for b in before]
    assert len(ids) == len(set(ids))  # no item twice
    assert "rome" in assistant.history.items()[-1].text.lower()
    assert assistant.errors == []


@pytest.mark.real
async def test_the_cli_answers_a_wav_file_and_saves_the_answer(base: str, tmp_path: Path) -> None:
    from openrealtime.bench.speech import speak

    question = tmp_path / "question.wav"
    write_wav(question, speak("What is the capital of France?"))
    answer = tmp_path / "answer.wav"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "openrealtime", "assistant", str(question), "--fast", "--url", base,
        "--out", str(answer), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(TIMEOUT_S * 3):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("you: ")
    assert "capital" in lines[0].lower()
    assert lines[1].startswith("assistant: ")
    assert lines[1].removeprefix("assistant: ").strip()
    assert answer.stat().st_size > RATE_HZ  # more than half a second of PCM16
