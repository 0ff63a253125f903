"""A WebRTC call on a draining door (issue 15): a new call gets a 503 ``server_draining``; a call in
progress cannot move, so it runs on until the drain's grace ends and is then hung up, freeing its
place, and the server stops. Loopback, an aiortc client peer, fake engines."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.admission import DRAINING_CODE
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.server.test_drain import draining_server
from tests.webrtc.peer import CallPeer

KEY = "sk-test-key"
GRACE_S = 1.0


@pytest.fixture
def engines() -> Any:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": voice},
    )
    yield engines
    engines.close()


async def test_a_call_runs_on_through_the_grace_then_is_hung_up_and_new_calls_are_refused(engines: EngineSet) -> None:
    settings = Settings(port=0, api_key=KEY, echo_cancellation=False, drain_grace_s=GRACE_S)
    async with draining_server(settings, engines) as (url, server):
        base = url.replace("ws://", "http://")
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_S) as http:
            caller, late = CallPeer(), CallPeer()
            try:
                assert (await caller.call(http, key=KEY)).status_code == 201
                await caller.next("session.created", timeout_s=TIMEOUT_S)
                loop = asyncio.get_running_loop()
                started = loop.time()
                server.start_drain()
                refused = await late.call(http, key=KEY)
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == DRAINING_CODE
                async with asyncio.timeout(GRACE_S + TIMEOUT_S):
                    while not server.should_exit:  # noqa: ASYNC110 - uvicorn's own flag
                        await asyncio.sleep(0.02)
                assert loop.time() - started >= GRACE_S  # the call was not cut before the grace ended
                report = server.drain.report
                assert report is not None
                assert report.calls_hung_up == 1
                assert server.drain.admission.total() == 0  # its place is free
            finally:
                await caller.close()
                await late.close()
