"""The real thing on loopback (issue 15): Redis, two front doors, a third openrealtime as their remote
ASR and voice (and a llama.cpp server as their LLM when ``llama-cpp-python[server]`` is installed),
nginx in front running deploy/nginx.conf. Clients use nginx's address only, through the official
``openai`` SDK and an aiortc caller.

Door A holds one realtime session at most, door B eight. In order: an ephemeral key minted through
nginx opens sessions on both doors; a WebRTC call's sideband and hang-up work on the door that does
not hold it; voice sessions spread across both doors, a full door refuses cleanly
(``session_limit_reached``, 1013) and the clients' retries through nginx land on the other, as do
new calls (nginx retries their 503); then door A is SIGKILLed in the middle of an answer, and its
client resumes through nginx on door B with every item it had, the cut answer incomplete, and the
conversation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from openai import AsyncOpenAI

from tests.conftest import TIMEOUT_S
from tests.deploy.cluster import KEY, Cluster, Process, cluster
from tests.server.test_realtime_real import until
from tests.server.test_resume_real import VOICE, spoken_turn

pytestmark = pytest.mark.real

BEARER = {"Authorization": f"Bearer {KEY}"}
ATTEMPTS = 8  # connects a client tries through nginx before it gives up (each refusal is one)
LIMIT_CODE = "session_limit_reached"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("doors")) as running:
        yield running
        for process in [running.engine, *running.doors, running.nginx]:  # shown when a test failed
            print(f"--- {process.name} ---\n{process.tail()}")


@contextlib.asynccontextmanager
async def sdk(deployment: Cluster, key: str = KEY) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(
        api_key=key, base_url=deployment.http_url + "/v1", websocket_base_url=deployment.ws_url + "/v1"
    )
    try:
        yield client
    finally:
        await client.close()


async def connect(stack: contextlib.AsyncExitStack, client: AsyncOpenAI, refusals: list[str], **options: Any) -> Any:
    """A session through nginx, as a client that retries a door's refusal (``error`` then 1013):
    the connection and its ``session.created``."""
    for _ in range(ATTEMPTS):
        manager = client.realtime.connect(model="gpt-realtime", **options)
        conn = await manager.enter()
        first = await conn.recv()
        if first.type == "session.created":
            stack.push_async_callback(conn.close)
            return conn, first
        assert first.type == "error", first
        refusals.append(first.error.code)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013  # Try Again Later: the SDK and our client retry it
        await conn.close()
    raise AssertionError(f"no door took the session in {ATTEMPTS} tries: {refusals}")


async def drained(conn: Any) -> None:
    """Read until the connection ends (it raises then)."""
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            await conn.recv()


def holder(deployment: Cluster, before: list[int]) -> Process:
    """The door whose realtime count went up since ``before``."""
    after = [deployment.realtime_open(door) for door in deployment.doors]
    [door] = [d for d, b, a in zip(deployment.doors, before, after, strict=True) if a == b + 1]
    return door


async def test_a_key_minted_through_nginx_opens_sessions_on_both_doors(deployment: Cluster) -> None:
    async with httpx.AsyncClient(base_url=deployment.http_url, timeout=TIMEOUT_S) as http:
        minted = await http.post("/v1/realtime/client_secrets", json={"session": VOICE}, headers=BEARER)
    assert minted.status_code == 200, minted.text
    secret = minted.json()["value"]
    for door in deployment.doors:  # whichever door minted it, the other one takes it too
        url = door.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {secret}"}) as ws:
            created = json.loads(await ws.recv())
        assert created["type"] == "session.created", created
        assert created["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400


async def test_a_calls_sideband_and_hang_up_work_on_the_door_that_does_not_hold_it(deployment: Cluster) -> None:
    import redis.asyncio as redis

    from tests.webrtc.peer import CallPeer
    from tests.webrtc.test_sideband import attached, call_id_of, next_event

    client = CallPeer()
    store = redis.Redis.from_url(deployment.redis_url)
    try:
        async with httpx.AsyncClient(base_url=deployment.http_url, timeout=TIMEOUT_S) as http:
            reply = await client.call(http, key=KEY)
            assert reply.status_code == 201, reply.text
            await client.next("session.created", timeout_s=TIMEOUT_S)
            call_id = call_id_of(reply)
            owner = (await store.get(f"openrealtime:call:{call_id}")).decode()
            [other] = [d for d in deployment.doors if d.url != owner]
            sideband_url = other.url.replace("http://", "ws://") + f"/v1/realtime?call_id={call_id}"
            async with websockets.connect(sideband_url, additional_headers=BEARER) as sideband:
                updated = await attached(sideband, "Set through the other door.")
                assert updated["session"]["instructions"] == "Set through the other door."
                seen = await client.next("session.updated", timeout_s=TIMEOUT_S)
                assert seen["session"]["instructions"] == "Set through the other door."
                hung_up = await http.post(f"{other.url}/v1/realtime/calls/{call_id}/hangup", headers=BEARER)
                assert hung_up.status_code == 200, hung_up.text
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await next_event(sideband, "never")
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1000
    finally:
        await client.close()
        await store.aclose()


async def test_sessions_spread_a_full_door_is_routed_around_and_a_killed_doors_sessions_resume(
    deployment: Cluster, tmp_path: Path
) -> None:
    door_a, door_b = deployment.doors
    refusals: list[str] = []
    async with sdk(deployment) as client, contextlib.AsyncExitStack() as stack:
        sessions: list[tuple[Any, str, Process]] = []
        for _ in range(3):  # least_conn puts the first two on different doors; A then is full
            before = [deployment.realtime_open(door) for door in deployment.doors]
            conn, created = await connect(stack, client, refusals)
            sessions.append((conn, created.session.id, holder(deployment, before)))
        assert {door.name for _, _, door in sessions} == {"door-a", "door-b"}  # spread over both
        assert deployment.realtime_open(door_a) == 1

        # Door A is full: asked directly it refuses cleanly; through nginx, clients land on B.
        async with websockets.connect(
            door_a.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime", additional_headers=BEARER
        ) as ws:
            error = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert (error["error"]["code"], closed.value.rcvd.code if closed.value.rcvd else None) == (LIMIT_CODE, 1013)
        for _ in range(2):
            before = [deployment.realtime_open(door) for door in deployment.doors]
            await connect(stack, client, refusals)
            assert holder(deployment, before) is door_b
        assert set(refusals) <= {LIMIT_CODE}

        # A spoken turn in each session, its items counted.
        items: dict[str, list[str]] = {}
        for conn, session_id, _ in sessions:
            await conn.session.update(session=VOICE)
            turn = await spoken_turn(conn, "What is the capital of France?")
            items[session_id] = [e.item.id for e in turn if e.type == "conversation.item.added"]
            assert turn[-1].response.status == "completed"
        [(victim, victim_id, _)] = [s for s in sessions if s[2] is door_a]

        # Door A dies in the middle of its session's second answer.
        cut = await spoken_turn(victim, "Tell me a long story about a dragon.", stop="response.output_audio.delta")
        items[victim_id] += [e.item.id for e in cut if e.type == "conversation.item.added"]
        cut_id = cut[-1].item_id
        door_a.kill()
        killed_at = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed):
            await drained(victim)

        # Its client resumes through nginx (A refuses connects now: nginx goes on to B).
        resumed, created = await connect(stack, client, refusals, extra_query={"session_id": victim_id})
        took_s = time.monotonic() - killed_at
        assert created.session.id == victim_id
        assert deployment.realtime_open(door_b) >= 3
        for item_id in items[victim_id]:
            await resumed.conversation.item.retrieve(item_id=item_id)
            retrieved = (await until(resumed, lambda e: e.type in ("conversation.item.retrieved", "error")))[-1]
            assert retrieved.type == "conversation.item.retrieved", retrieved
            if item_id == cut_id:
                assert retrieved.item.status == "incomplete"
        after = await spoken_turn(resumed, "And what is the capital of Italy?")
        assert after[-1].response.status == "completed"
        added = [e.item.id for e in after if e.type == "conversation.item.added"]
        assert not set(added) & set(items[victim_id])  # nothing twice
        assert "rome" in after[-1].response.output[0].content[0].transcript.lower()

        # The sessions on door B never noticed.
        for conn, session_id, door in sessions:
            if door is door_b:
                for item_id in items[session_id]:
                    await conn.conversation.item.retrieve(item_id=item_id)
                    retrieved = (await until(conn, lambda e: e.type in ("conversation.item.retrieved", "error")))[-1]
                    assert retrieved.type == "conversation.item.retrieved"
    (tmp_path / "resume_after_sigkill_s.txt").write_text(f"{took_s:.3f}\n")
    print(f"resumed through nginx {took_s:.2f} s after the SIGKILL")
