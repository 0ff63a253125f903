"""Client secrets on Redis (issue 15): minted on one front door, valid on every door that shares the
Redis; digests only, Redis's own expiry, the deployment-wide bounds, and a Redis that does not answer.
A test-started ``redis-server`` (skipped without it); fake engines for the two doors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.redis_secrets import RedisSecretStore
from openrealtime.server.secrets import MemorySecretStore, SecretStoreUnavailable, StoreFull, open_secret_store
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.server.test_client_secrets import ASSISTANT, KEY, MINT, SECRET_SHAPE, Clock, bearer
from tests.state.redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@contextlib.asynccontextmanager
async def store(url: str, clock: Clock, **bounds: int) -> AsyncIterator[RedisSecretStore]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, decode_responses=False)
    await client.flushdb()
    secrets = RedisSecretStore(client, clock=clock, **bounds)
    try:
        yield secrets
    finally:
        await secrets.close()


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
    )
    yield engines
    engines.close()


async def test_a_secret_minted_on_one_door_is_found_on_another_and_redis_keeps_only_its_digest(redis_url: str) -> None:
    import redis.asyncio as redis

    clock = Clock()
    async with store(redis_url, clock) as door_a:
        door_b = RedisSecretStore(redis.Redis.from_url(redis_url), clock=clock)
        value, secret = await door_a.mint(SessionKind.TRANSCRIPTION, '{"type":"transcription"}', 60)
        assert SECRET_SHAPE.fullmatch(value)
        assert secret.expires_at_s == int(clock.now_s) + 60
        assert await door_b.lookup(value) == secret
        assert await door_b.lookup(value[:-1] + ("1" if value[-1] == "0" else "0")) is None
        assert await door_b.lookup("sk-" + value[3:]) is None
        assert await door_b.live() == 1
        raw = redis.Redis.from_url(redis_url)
        everything = b"".join([*(await raw.keys("*")), *[await raw.dump(k) or b"" for k in await raw.keys("*")]])
        assert value.encode() not in everything
        assert value[3:].encode() not in everything
        [secret_key] = await raw.keys("openrealtime:{secrets}:ek:*")
        assert 59_000 < await raw.pttl(secret_key) <= 60_000  # Redis's own expiry is the secret's
        await raw.aclose()
        await door_b.close()


async def test_an_expired_secret_opens_nothing_and_frees_its_place(redis_url: str) -> None:
    clock = Clock()
    async with store(redis_url, clock, max_live=1) as secrets:
        value, _ = await secrets.mint(SessionKind.REALTIME, "{}", 10)
        clock.now_s += 10
        assert await secrets.lookup(value) is None
        assert await secrets.live() == 0
        await secrets.mint(SessionKind.REALTIME, "{}", 10)  # the expired one's place is free


async def test_the_bounds_are_the_deployments_and_a_full_store_says_when_a_place_frees(redis_url: str) -> None:
    import redis.asyncio as redis

    clock = Clock()
    async with store(redis_url, clock, max_live=2) as door_a:
        door_b = RedisSecretStore(redis.Redis.from_url(redis_url), max_live=2, clock=clock)
        await door_a.mint(SessionKind.REALTIME, "{}", 30)
        await door_b.mint(SessionKind.REALTIME, "{}", 60)
        with pytest.raises(StoreFull) as full:
            await door_a.mint(SessionKind.REALTIME, "{}", 600)
        assert full.value.retry_after_s == 30
        assert "2 secrets" in full.value.message
        clock.now_s += 30
        await door_b.mint(SessionKind.REALTIME, "{}", 600)
        await door_b.close()
    async with store(redis_url, clock, max_chars=10) as by_size:
        await by_size.mint(SessionKind.REALTIME, "x" * 8, 600)
        with pytest.raises(StoreFull):
            await by_size.mint(SessionKind.REALTIME, "x" * 3, 600)
        clock.now_s += 600
        await by_size.mint(SessionKind.REALTIME, "x" * 10, 600)  # the expired config's characters are free


async def test_a_redis_that_does_not_answer_is_unavailable_not_a_wrong_key() -> None:
    secrets = RedisSecretStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(SecretStoreUnavailable):
        await secrets.mint(SessionKind.REALTIME, "{}", 60)
    with pytest.raises(SecretStoreUnavailable):
        await secrets.lookup("ek_" + "0" * 32)
    assert await secrets.live() == -1
    await secrets.close()


def test_the_state_url_picks_the_store() -> None:
    assert isinstance(open_secret_store(None), MemorySecretStore)
    assert isinstance(open_secret_store("memory://"), MemorySecretStore)
    assert isinstance(open_secret_store("redis://127.0.0.1:1/0", 5), RedisSecretStore)


async def test_a_key_minted_on_door_a_opens_a_session_on_door_b(redis_url: str, engines: EngineSet) -> None:
    settings = Settings(port=0, api_key=KEY, state_url=redis_url)
    async with (
        running_server(settings, engines=engines) as door_a,
        running_server(settings, engines=engines) as door_b,
        httpx.AsyncClient(base_url=door_a.replace("ws", "http", 1), timeout=TIMEOUT_S) as http,
    ):
        minted = await http.post(MINT, json={"session": ASSISTANT}, headers=bearer(KEY))
        assert minted.status_code == 200, minted.text
        value = minted.json()["value"]
        async with websockets.connect(f"{door_b}/v1/realtime", additional_headers=bearer(value)) as ws:
            created = json.loads(await ws.recv())
        assert created["type"] == "session.created"
        assert created["session"]["instructions"] == ASSISTANT["instructions"]


async def test_a_connect_with_a_secret_while_redis_is_down_is_told_to_retry(tmp_path: Path, engines: EngineSet) -> None:
    with redis_server(tmp_path) as url:
        settings = Settings(port=0, api_key=KEY, state_url=url, max_auth_failures_per_minute=1)
        async with running_server(settings, engines=engines) as door:
            import redis.asyncio as redis

            admin = redis.Redis.from_url(url)
            await admin.shutdown(nosave=True)  # type: ignore[no-untyped-call]
            for _ in range(3):  # not counted as guesses: never throttled
                async with websockets.connect(f"{door}/v1/realtime", additional_headers=bearer("ek_" + "1" * 32)) as ws:
                    error = json.loads(await ws.recv())
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await ws.recv()
                assert error["error"]["code"] == "client_secret_store_unavailable"
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
