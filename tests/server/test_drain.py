"""Graceful drain (issue 15): a draining door takes nothing new, ends each session between turns with
``server_shutting_down`` and 1012, the busy ones when they turn quiet or at the grace's end, hangs up
its calls, and then stops. Fast: a scripted drain over stand-in connections, and the real server in
this process (fake engines) drained through its SIGTERM handler. The real process, SIGTERM and Redis:
``test_drain_real.py``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from openrealtime.contracts import ChatChunk, ChatRequest
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.admission import DRAINING_CODE, Admission
from openrealtime.server.app import create_app
from openrealtime.server.drain import CLOSE_SERVICE_RESTART, SHUTTING_DOWN_CODE, Activity, Drain
from openrealtime.server.listener import uvicorn_config
from openrealtime.server.settings import Settings
from openrealtime.server.shutdown import DrainingServer
from tests.conftest import TIMEOUT_S

TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"]}


# --- Activity: mid-turn or not, from the events --------------------------------------------------


def _event(kind: str, **fields: Any) -> se.ServerEvent:
    return se.ServerEvent.model_construct(type=kind, **fields)


def test_activity_follows_turns_responses_and_call_audio() -> None:
    activity = Activity()
    assert not activity.in_turn
    activity.observe(_event("input_audio_buffer.speech_started"))
    assert activity.in_turn
    activity.observe(_event("input_audio_buffer.speech_stopped"))
    assert activity.in_turn  # a pause is not the turn's end (semantic_vad may go on waiting)
    activity.observe(_event("input_audio_buffer.committed"))
    assert not activity.in_turn
    activity.observe(se.ResponseCreated(response={"id": "resp_1"}))
    activity.observe(se.ResponseCreated(response={"id": "resp_2"}))  # out of band, alongside
    activity.observe(se.ResponseDone(response={"id": "resp_1"}))
    assert activity.in_turn
    activity.observe(se.ResponseDone(response={"id": "resp_2"}))
    assert not activity.in_turn
    activity.observe(_event("output_audio_buffer.started"))
    assert activity.in_turn  # a call still plays the answer after response.done
    activity.observe(_event("output_audio_buffer.cleared"))
    activity.observe(_event("input_audio_buffer.speech_started"))
    activity.observe(_event("input_audio_buffer.cleared"))
    assert not activity.in_turn


# --- the drain over stand-in connections ----------------------------------------------------------


@dataclass(eq=False)
class StandIn:
    """A connection as the drain sees it; ending it lets go on the next turn of the loop."""

    drain: Drain
    jobs_running: int = 0
    ended: list[tuple[str, int, str]] = field(default_factory=list)

    def end(self, code: str, message: str, close_code: int = 1001, error_type: str = "") -> None:
        self.ended.append((code, close_code, error_type))
        asyncio.get_running_loop().call_soon(self.drain.release, self)


class StandInCalls:
    def __init__(self, live: int) -> None:
        self.live = live
        self.closed = False

    async def close(self) -> None:
        self.closed, self.live = True, 0


async def test_quiet_sessions_end_at_once_busy_ones_when_quiet_stuck_ones_at_the_grace() -> None:
    admission = Admission({SessionKind.REALTIME: 4})
    calls = StandInCalls(live=1)
    drain = Drain(admission, grace_s=0.5, calls=calls)
    quiet, busy, stuck = StandIn(drain), StandIn(drain, jobs_running=1), StandIn(drain)
    talking = Activity()
    talking.observe(_event("input_audio_buffer.speech_started"))  # a user turn that never ends
    drain.hold(quiet, "sess_quiet", Activity())
    drain.hold(busy, "sess_busy", Activity())
    drain.hold(stuck, "sess_stuck", talking)
    loop = asyncio.get_running_loop()
    started = loop.time()
    run = asyncio.create_task(drain.run())
    await asyncio.sleep(0.1)
    assert admission.draining
    assert not admission.admit(SessionKind.REALTIME)
    assert quiet.ended == [(SHUTTING_DOWN_CODE, CLOSE_SERVICE_RESTART, "server_error")]
    assert not busy.ended
    assert not stuck.ended
    busy.jobs_running = 0  # its answer is done
    await asyncio.sleep(0.1)
    assert busy.ended
    assert not stuck.ended
    assert not calls.closed  # a call cannot move: it runs on until the grace ends
    report = await run
    assert stuck.ended
    assert calls.closed
    assert loop.time() - started >= 0.5
    assert (report.quiet, report.cut, report.calls_hung_up, report.left) == (2, 1, 1, 0)
    assert report.ended == ["sess_quiet", "sess_busy", "sess_stuck"]
    assert len(drain) == 0


async def test_a_door_with_nothing_to_drain_is_done_at_once() -> None:
    drain = Drain(Admission({}), grace_s=30)
    report = await asyncio.wait_for(drain.run(), TIMEOUT_S)
    assert report.seconds < 1


# --- the real server in this process, drained by its SIGTERM handler ----------------------------


class SlowChat(FakeChatModel):
    """Answers word by word, ``delay_s`` apart: an answer still running when the drain starts."""

    def __init__(self, reply: str, delay_s: float) -> None:
        super().__init__(reply)
        self.delay_s = delay_s

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        for chunk in super().chat(request, stop):
            if stop.wait(self.delay_s):
                return
            yield chunk


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=SlowChat("one two three four five six", delay_s=0.1),
        synthesizers={"*": ToneSynthesizer()},
    )
    yield engines
    engines.close()


@contextlib.asynccontextmanager
async def draining_server(settings: Settings, engines: EngineSet) -> AsyncIterator[tuple[str, DrainingServer]]:
    app = create_app(settings, engines=engines)
    server = DrainingServer(uvicorn_config(app, settings, log_level="warning", lifespan="on"), app.state.drain)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


async def _events_until(ws: Any, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(json.loads(await ws.recv()))
        if events[-1]["type"] == kind:
            return events


async def test_sigterm_lets_the_answer_finish_then_closes_with_1012_and_refuses_newcomers(
    engines: EngineSet,
) -> None:
    settings = Settings(port=0, drain_grace_s=TIMEOUT_S)
    async with draining_server(settings, engines) as (url, server):
        base = url.replace("ws://", "http://")
        async with (
            websockets.connect(f"{url}/v1/realtime?model=gpt-realtime") as busy,
            websockets.connect(f"{url}/v1/realtime?model=gpt-realtime") as idle,
            httpx.AsyncClient() as http,
        ):
            session_id = json.loads(await busy.recv())["session"]["id"]
            assert json.loads(await idle.recv())["type"] == "session.created"
            await busy.send(json.dumps({"type": "session.update", "session": TEXT_ONLY}))
            await busy.send(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                    }
                )
            )
            await busy.send(json.dumps({"type": "response.create"}))
            await _events_until(busy, "response.output_text.delta")  # the answer is under way
            server.handle_exit(signal.SIGTERM, None)  # what the signal does, without signalling pytest
            # The idle session goes at once, with the documented error and close code.
            error = json.loads(await idle.recv())
            assert error["error"]["code"] == SHUTTING_DOWN_CODE
            assert error["error"]["type"] == "server_error"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await idle.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_SERVICE_RESTART
            # Unready, and a newcomer is refused with server_draining and 1013.
            ready = await http.get(f"{base}/readyz")
            assert (ready.status_code, ready.json()["reason"]) == (503, "draining")
            assert (await http.get(f"{base}/healthz")).json()["reason"] == "draining"
            assert (await http.get(f"{base}/livez")).status_code == 200
            async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime") as late:
                refusal = json.loads(await late.recv())
                assert refusal["error"]["code"] == DRAINING_CODE
                with pytest.raises(websockets.ConnectionClosed) as refused:
                    await late.recv()
                assert refused.value.rcvd is not None
                assert refused.value.rcvd.code == 1013
            # The answer in flight finishes, then the session is ended so it can resume elsewhere.
            rest = await _events_until(busy, "error")
            done = [e for e in rest if e["type"] == "response.done"]
            assert [d["response"]["status"] for d in done] == ["completed"]
            assert session_id in rest[-1]["error"]["message"]
            with pytest.raises(websockets.ConnectionClosed) as moved:
                await busy.recv()
            assert moved.value.rcvd is not None
            assert moved.value.rcvd.code == CLOSE_SERVICE_RESTART
        async with asyncio.timeout(TIMEOUT_S):  # then the server stops by itself
            while not server.should_exit:  # noqa: ASYNC110 - uvicorn's own flag
                await asyncio.sleep(0.01)
        report = server.drain.report
        assert report is not None
        assert (report.quiet, report.cut, report.left) == (2, 0, 0)


def test_serve_takes_the_grace_as_a_flag_and_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from openrealtime.cli import build_parser

    assert build_parser().parse_args(["serve", "--drain-grace-s", "12.5"]).drain_grace_s == 12.5
    assert Settings.load().drain_grace_s == 30.0
    monkeypatch.setenv("OPENREALTIME_DRAIN_GRACE_S", "5")
    assert Settings.load().drain_grace_s == 5.0


async def test_the_official_sdk_sees_the_refusal_of_a_draining_door_as_a_clear_error(engines: EngineSet) -> None:
    from openai import AsyncOpenAI

    async with draining_server(Settings(port=0), engines) as (url, server):
        server.drain.admission.draining = True  # as the drain does first
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        try:
            async with client.realtime.connect(model="gpt-realtime") as conn:
                event = await conn.recv()
                assert event.type == "error"
                assert event.error.type == "server_error"
                assert event.error.code == DRAINING_CODE
                assert "shutting down" in event.error.message
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await conn.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
        finally:
            await client.close()


async def test_a_resume_at_a_draining_door_is_sent_elsewhere_before_it_looks_for_the_session(
    engines: EngineSet,
) -> None:
    async with draining_server(Settings(port=0), engines) as (url, server):
        server.drain.admission.draining = True
        # Unknown here: without the early refusal it would be session_not_found (4000), and a client
        # would give the session up instead of resuming it at another door.
        async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime&session_id=sess_elsewhere") as ws:
            assert json.loads(await ws.recv())["error"]["code"] == DRAINING_CODE
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
