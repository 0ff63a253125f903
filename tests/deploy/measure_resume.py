"""Time to resume through nginx after a front door is SIGKILLed (issue 15), on the loopback deployment
of tests/deploy/cluster.py (Redis, an engine server, two doors, nginx with deploy/nginx.conf).

Each round opens a session through nginx, has one answered turn (text, so the engines' speed does not
count), SIGKILLs the door that holds it, and times, from the kill: the client seeing its connection
end, the resumed session's ``session.created`` through nginx (on the other door), and the first
earlier item retrieved from it. The killed door is started again before the next round. Run it on a
quiet machine::

    .venv/bin/python -m tests.deploy.measure_resume --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from openrealtime.state.redis_store import RedisStateStore
from tests.deploy.cluster import KEY, Cluster, cluster

TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "instructions": "Answer in one short sentence."}
STEP_TIMEOUT_S = 120.0
POLL_S = 0.01


async def _until(conn: Any, *types: str) -> Any:
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while (event := await conn.recv()).type not in types:
            pass
    return event


async def one_round(deployment: Cluster, client: AsyncOpenAI) -> dict[str, float]:
    before = [deployment.realtime_open(door) for door in deployment.doors]
    async with contextlib.AsyncExitStack() as stack:
        conn = await client.realtime.connect(model="gpt-realtime").enter()
        stack.push_async_callback(conn.close)
        session_id = (await _until(conn, "session.created")).session.id
        await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello, I am Ada."}]}
        await conn.conversation.item.create(item=item)  # type: ignore[arg-type]
        item_id = (await _until(conn, "conversation.item.added")).item.id
        await conn.response.create()
        await _until(conn, "response.done")
        after = [deployment.realtime_open(door) for door in deployment.doors]
        [door] = [d for d, b, a in zip(deployment.doors, before, after, strict=True) if a > b]
        await _written(deployment.redis_url, session_id, items=2)  # the kill loses nothing then

        door.kill()
        killed = time.perf_counter()
        with contextlib.suppress(Exception):
            await _until(conn, "never")
        lost_s = time.perf_counter() - killed
        resumed = await client.realtime.connect(model="gpt-realtime", extra_query={"session_id": session_id}).enter()
        stack.push_async_callback(resumed.close)
        created = await _until(resumed, "session.created", "error")
        resumed_s = time.perf_counter() - killed
        assert created.type == "session.created", created
        await resumed.conversation.item.retrieve(item_id=item_id)
        retrieved = await _until(resumed, "conversation.item.retrieved", "error")
        assert retrieved.type == "conversation.item.retrieved", retrieved
        retrieved_s = time.perf_counter() - killed
    deployment.restart(door)
    return {"lost": lost_s, "resumed": resumed_s, "retrieved": retrieved_s}


async def _written(redis_url: str, session_id: str, *, items: int) -> None:
    """Until the store holds ``items`` items of the session (the recorder writes within milliseconds)."""
    store = RedisStateStore.from_url(redis_url)
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while (state := await store.load(session_id)) is None or len(state.order) < items:  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(POLL_S)
    finally:
        await store.close()


def _summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:>10}: median {statistics.median(values) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


async def measure(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory, cluster(Path(directory), door_limits=(8, 8)) as deployment:
        client = AsyncOpenAI(api_key=KEY, websocket_base_url=deployment.ws_url + "/v1")
        results: list[dict[str, float]] = []
        for number in range(1, rounds + 1):
            result = await one_round(deployment, client)
            results.append(result)
            print(f"round {number}: " + "  ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.items()), flush=True)
        await client.close()
    print(f"after a SIGKILL, from the kill ({rounds} rounds, through nginx):")
    for name in ("lost", "resumed", "retrieved"):
        print(_summary(name, [r[name] for r in results]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(measure(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
