"""Several front doors (issue 15): the client library connects to the first door that takes the
session, moves on at a refusal (1013: full or draining) or a connect error with backoff, sees the
caller's own faults at once, and the assistant resumes a session drained by its door on the next.
Fast: our servers in this process over fake engines, sharing one state store as doors share Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from openrealtime.client.assistant import Assistant
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.failover import SHUTTING_DOWN_CODE, Failover, shutting_down_error
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.exceptions import ConnectionClosedError
from openrealtime.runtime.engines import EngineSet
from openrealtime.server import drain as server_drain
from openrealtime.server.app import create_app
from openrealtime.server.embedded import running_server
from openrealtime.server.listener import uvicorn_config
from openrealtime.server.settings import Settings
from openrealtime.server.shutdown import DrainingServer
from openrealtime.state.store import MemoryStateStore
from tests.conftest import TIMEOUT_S

PATH = "/v1/realtime?model=gpt-realtime"
KEY = "sk-failover-test"


# --- the policy ----------------------------------------------------------------------------------


def test_doors_are_tried_in_turn_from_the_one_after_the_door_lost_with_backoff_between_rounds() -> None:
    policy = Failover(("a", "b", "c"), attempts=7, backoff_s=0.25, max_backoff_s=0.6)
    no_jitter = list(policy.schedule(rng=lambda: 0.0))
    assert no_jitter == [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.25), (1, 0.0), (2, 0.0), (0, 0.5)]
    assert [door for door, _ in policy.schedule(after=1)][:3] == [2, 0, 1]  # the lost door last
    jittered = [wait for _, wait in policy.schedule(rng=lambda: 1.0) if wait]
    assert jittered == [0.25 * 0.75, 0.5 * 0.75]
    balancer = Failover(("lb",), attempts=5, backoff_s=1.0, max_backoff_s=3.0)
    assert list(balancer.schedule(rng=lambda: 0.0)) == [(0, 0.0), (0, 1.0), (0, 2.0), (0, 3.0), (0, 3.0)]
    assert Failover.of("x").urls == ("x",)
    assert Failover.of(["x", "y"]).with_urls(["z"]).urls == ("z",)
    with pytest.raises(ValueError, match="at least one URL"):
        Failover(())


def test_the_drain_error_is_one_value_on_both_sides_of_the_wire() -> None:
    assert SHUTTING_DOWN_CODE == server_drain.SHUTTING_DOWN_CODE
    assert shutting_down_error({"type": "error", "error": {"code": SHUTTING_DOWN_CODE}})
    assert not shutting_down_error({"type": "error", "error": {"code": "session_expired"}})


# --- connecting over real sockets -------------------------------------------------------------------


def _engines() -> EngineSet:
    return EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
    )


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = _engines()
    yield engines
    engines.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}{PATH}"  # nothing listens there now: connection refused


async def test_a_full_door_and_a_dead_one_are_passed_over_for_one_that_takes_the_session(engines: EngineSet) -> None:
    full = Settings(port=0, max_realtime_sessions=1)
    async with (
        running_server(full, engines=engines) as door_a,
        running_server(Settings(port=0), engines=engines) as b,
        await RealtimeConnection.connect(f"{door_a}{PATH}") as occupant,
    ):
        assert (await occupant.recv())["type"] == "session.created"
        urls = [_closed_port_url(), f"{door_a}{PATH}", f"{b}{PATH}"]
        async with await RealtimeConnection.connect(Failover(tuple(urls), attempts=3)) as conn:
            assert conn.door == 2
            assert conn.url == urls[2]
            created = await conn.recv()  # read while connecting, handed on first
            assert created["type"] == "session.created"
            await conn.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Hi."}})
            assert (await conn.recv())["type"] == "session.updated"


async def test_doors_that_all_refuse_give_up_after_the_attempts_with_the_refusal(engines: EngineSet) -> None:
    async with running_server(Settings(port=0, max_realtime_sessions=1), engines=engines) as door:
        occupant = await RealtimeConnection.connect(f"{door}{PATH}")
        assert (await occupant.recv())["type"] == "session.created"
        policy = Failover((f"{door}{PATH}",), attempts=3, backoff_s=0.01)
        with pytest.raises(ConnectionClosedError) as refused:
            await RealtimeConnection.connect(policy)
        await occupant.close()
        assert refused.value.code == 1013
        assert "limit of 1 realtime sessions" in refused.value.reason
        assert "3 attempts" in refused.value.reason


async def test_the_callers_own_fault_is_not_retried(engines: EngineSet) -> None:
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as door:
        policy = Failover((f"{door}{PATH}", f"{door}{PATH}"), attempts=4)
        async with await RealtimeConnection.connect(policy, api_key="sk-wrong") as conn:
            assert conn.door == 0  # no second door tried: a wrong key is wrong everywhere
            error = await conn.recv()
            assert error["error"]["code"] == "invalid_api_key"
            with pytest.raises(ConnectionClosedError) as closed:
                await conn.recv()
            assert closed.value.code == 3000


# --- the assistant, its door drained ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def draining_door(engines: EngineSet, state: MemoryStateStore) -> AsyncIterator[tuple[str, DrainingServer]]:
    settings = Settings(port=0, drain_grace_s=TIMEOUT_S)
    app = create_app(settings, engines=engines, state=state)
    server = DrainingServer(uvicorn_config(app, settings, log_level="warning", lifespan="on"), app.state.drain)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", server
    finally:
        server.should_exit = True
        await task


class SharedMemory(MemoryStateStore):
    """The store of both doors, as one Redis: a door that stops closes its client, not the data."""

    async def close(self) -> None:
        pass


async def say(assistant: Assistant, text: str) -> None:
    done = len(assistant.responses)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await assistant.send({"type": "conversation.item.create", "item": item})
    await assistant.create_response()
    await assistant.wait_until(lambda: len(assistant.responses) > done and assistant.idle(), timeout_s=TIMEOUT_S)


async def test_the_assistant_resumes_its_session_on_the_next_door_when_its_door_drains() -> None:
    state = SharedMemory()  # both doors on one store, as on one Redis
    engines_a, engines_b = _engines(), _engines()
    try:
        async with (
            draining_door(engines_a, state) as (door_a, server_a),
            running_server(Settings(port=0), engines=engines_b, state=state) as door_b,
        ):
            options = AssistantOptions(url=f"{door_a}{PATH}", urls=(f"{door_b}{PATH}",))
            async with Assistant(options) as assistant:
                session_id = assistant.session["id"]
                await say(assistant, "My name is Ada.")
                items_before = [item.id for item in assistant.history.items()]
                server_a.start_drain()
                await assistant.wait_until(lambda: assistant.reconnects == 1, timeout_s=TIMEOUT_S)
                assert assistant.session["id"] == session_id  # resumed, not replayed
                assert not assistant.errors  # the drain's error is no error of the conversation
                await say(assistant, "What is my name?")
                items_after = [item.id for item in assistant.history.items()]
            assert items_after[: len(items_before)] == items_before
            assert len(items_after) == len(items_before) + 2
            chat_b = engines_b.chat
            assert isinstance(chat_b, FakeChatModel)
            roles = [m["role"] for m in chat_b.requests[-1].messages]
            assert roles == ["system", "user", "assistant", "user"]  # door B answered with all of it
            report = server_a.drain.report
            assert report is not None
            assert report.ended == [session_id]
    finally:
        engines_a.close()
        engines_b.close()


async def test_the_first_event_of_one_url_is_read_and_handed_on(engines: EngineSet) -> None:
    async with running_server(Settings(port=0), engines=engines) as door:
        async with await RealtimeConnection.connect([f"{door}{PATH}"]) as conn:
            events = [await conn.recv()]
            await conn.send({"type": "input_audio_buffer.clear"})
            events.append(await conn.recv())
        assert [e["type"] for e in events] == ["session.created", "input_audio_buffer.cleared"]
        assert json.dumps(events)  # plain dicts, as from any connection


def test_the_cli_takes_url_more_than_once() -> None:
    from openrealtime.cli import DEFAULT_ASSISTANT_URL, _doors, build_parser

    args = build_parser().parse_args(
        ["assistant", "q.wav", "--url", "ws://a/v1/realtime", "--url", "ws://b/v1/realtime"]
    )
    assert args.url == "ws://a/v1/realtime"
    assert _doors(args) == ["ws://a/v1/realtime", "ws://b/v1/realtime"]
    one = build_parser().parse_args(["transcribe", "talk.wav", "--url", "ws://c/v1/realtime"])
    assert _doors(one) == ["ws://c/v1/realtime"]
    default = build_parser().parse_args(["assistant", "q.wav"])
    assert default.url == DEFAULT_ASSISTANT_URL or default.url.startswith("ws")  # the variable may set it
    assert _doors(default) == [default.url]
