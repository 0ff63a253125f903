"""The state store on Redis (``--state-url redis://host:port/db``): any server that shares the
Redis can resume any session.

A session is four keys, ``openrealtime:sess_...:{meta,order,items,audio}`` (two strings and two
hashes, see :mod:`~openrealtime.state.records`); a write is one pipelined round trip that sets what
changed and moves all four keys' expiry to the grace window from now. The ``redis`` package's
asyncio client is imported only when a Redis URL is used.
"""

from __future__ import annotations

from typing import Any

from openrealtime.state.records import SessionState, StateChange

KEY_PREFIX = "openrealtime:"
SOCKET_TIMEOUT_S = 2.0  # a Redis that does not answer in this long fails the call
_PARTS = ("meta", "order", "items", "audio")


def _keys(session_id: str) -> dict[str, str]:
    return {part: f"{KEY_PREFIX}{session_id}:{part}" for part in _PARTS}


class RedisStateStore:
    """Sessions' state in Redis, through ``redis.asyncio`` (one connection pool per store)."""

    def __init__(self, client: Any) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisStateStore:
        import redis.asyncio as redis

        client = redis.Redis.from_url(
            url, decode_responses=False, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
        )
        return cls(client)

    async def ping(self) -> bool:
        """Whether the Redis answers (the server checks it at start-up)."""
        return bool(await self._redis.ping())

    async def save(self, session_id: str, change: StateChange, ttl_s: float) -> None:
        keys = _keys(session_id)
        ttl_ms = max(1, int(ttl_s * 1000))
        pipe = self._redis.pipeline(transaction=False)
        if change.meta is not None:
            pipe.set(keys["meta"], change.meta)
        if change.order is not None:
            pipe.set(keys["order"], change.order)
        if change.items:
            pipe.hset(keys["items"], mapping=change.items)
        if change.audio:
            pipe.hset(keys["audio"], mapping=change.audio)
        if change.removed:
            pipe.hdel(keys["items"], *change.removed)
            pipe.hdel(keys["audio"], *change.removed)
        for key in keys.values():
            pipe.pexpire(key, ttl_ms)
        await pipe.execute()

    async def load(self, session_id: str) -> SessionState | None:
        keys = _keys(session_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys["meta"])
        pipe.get(keys["order"])
        pipe.hgetall(keys["items"])
        pipe.hgetall(keys["audio"])
        meta, order, items, audio = await pipe.execute()
        if meta is None:
            return None
        return SessionState.decode(
            session_id,
            meta,
            order,
            {k.decode(): v for k, v in items.items()},
            {k.decode(): v for k, v in audio.items()},
        )

    async def delete(self, session_id: str) -> None:
        await self._redis.delete(*_keys(session_id).values())

    async def close(self) -> None:
        await self._redis.aclose()
