"""A session whose front door died (issue 15): its owner key still names that door in Redis, but
nobody listens on the door's takeover channel, so a resume on another door takes it over at once
instead of waiting ``TAKEOVER_TIMEOUT_S`` for a release that will never come. Fake engines, a
test-started Redis; tests/deploy/ kills a real door with SIGKILL."""

from __future__ import annotations

import time
from pathlib import Path

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.resume import TAKEOVER_TIMEOUT_S
from openrealtime.server.settings import Settings
from openrealtime.state.redis_store import RedisStateStore
from tests.server.test_resume import KEY, TEXT_ONLY, ask, engines, retrieve, sdk
from tests.state.redis_server import redis_server

__all__ = ["engines"]

GONE_DOOR = "door_killed_with_sigkill"


async def test_a_session_held_by_a_dead_door_is_taken_over_at_once(engines: EngineSet, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis_url:
        settings = Settings(port=0, api_key=KEY, state_url=redis_url)
        store = RedisStateStore.from_url(redis_url)
        async with (
            running_server(settings, engines=engines) as first,
            running_server(settings, engines=engines) as second,
        ):
            async with sdk(first) as client, client.realtime.connect(model="gpt-realtime") as conn:
                session_id = (await conn.recv()).session.id
                await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
                added, _ = await ask(conn, "My name is Ada.")
            # As a SIGKILL leaves it: the owner key names a door that listens no more.
            await store.claim(session_id, GONE_DOOR, 60)
            started = time.monotonic()
            async with (
                sdk(second) as client,
                client.realtime.connect(model="gpt-realtime", extra_query={"session_id": session_id}) as conn,
            ):
                assert (await conn.recv()).session.id == session_id
                took_s = time.monotonic() - started
                for item_id in added:
                    assert (await retrieve(conn, item_id)).type == "conversation.item.retrieved"
        await store.close()
    assert took_s < TAKEOVER_TIMEOUT_S / 5, f"the resume waited {took_s:.1f} s for a dead door"
