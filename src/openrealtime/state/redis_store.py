"""The state store on Redis (``--state-url redis://host:port/db``): any server that shares the
Redis can resume any session.

A session is four keys, ``openrealtime:sess_...:{meta,order,items,audio}`` (two strings and two
hashes, see :mod:`~openrealtime.state.records`); a write is one pipelined round trip that sets what
changed and moves all four keys' expiry to the grace window from now. The ``redis`` package's
asyncio client is imported only when a Redis URL is used.

Servers on one Redis also share who holds each session (:class:`~openrealtime.server.resume.LiveSessions`):
a fifth key, ``...:owner``, names the server whose connection holds it, and each server listens on
its own channel, ``openrealtime:takeover:<server>``, for the ids of sessions another server resumes,
so that the old connection is ended wherever it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from openrealtime.state.records import SessionState, StateChange

KEY_PREFIX = "openrealtime:"
SOCKET_TIMEOUT_S = 2.0  # a Redis that does not answer in this long fails the call
_PARTS = ("meta", "order", "items", "audio", "owner")
LISTEN_POLL_S = 1.0  # the takeover listener's wait for a message (under the socket timeout)
RELISTEN_DELAY_S = 1.0  # after the listener lost the Redis, before it subscribes again

log = logging.getLogger(__name__)


def redis_client(url: str) -> Any:
    """A ``redis.asyncio`` client (its own connection pool) for ``url``, with the timeouts every
    Redis user here shares: the state store, the call directory and the client secrets."""
    import redis.asyncio as redis

    return redis.Redis.from_url(
        url, decode_responses=False, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S
    )


def _keys(session_id: str) -> dict[str, str]:
    return {part: f"{KEY_PREFIX}{session_id}:{part}" for part in _PARTS}


class RedisStateStore:
    """Sessions' state in Redis, through ``redis.asyncio`` (one connection pool per store)."""

    def __init__(self, client: Any) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisStateStore:
        return cls(redis_client(url))

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

    # --- who holds a session (servers sharing this Redis) -------------------------------------------

    async def claim(self, session_id: str, owner: str, ttl_s: float) -> None:
        """``owner`` holds the session now (its expiry moves with the state's, at each write)."""
        await self._redis.set(_keys(session_id)["owner"], owner, px=max(1, int(ttl_s * 1000)))

    async def release(self, session_id: str, owner: str) -> None:
        """``owner`` let the session go (unless another has claimed it since)."""
        key = _keys(session_id)["owner"]
        if await self._redis.get(key) == owner.encode():
            await self._redis.delete(key)

    async def owner_of(self, session_id: str) -> str | None:
        value = await self._redis.get(_keys(session_id)["owner"])
        return value.decode() if value is not None else None

    async def ask_release(self, owner: str, session_id: str) -> int:
        """Ask server ``owner`` to end its connection of ``session_id``; how many listeners heard it
        (0: ``owner`` is not listening: a server that was killed lost its subscription with its
        socket, at once)."""
        return int(await self._redis.publish(f"{KEY_PREFIX}takeover:{owner}", session_id))

    async def listen(self, owner: str, on_request: Callable[[str], None]) -> None:
        """Call ``on_request`` with each session id another server asks ``owner`` to let go; runs
        until cancelled, subscribing again after a lost connection."""
        channel = f"{KEY_PREFIX}takeover:{owner}"
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_POLL_S)
                    if message is not None and message.get("type") == "message":
                        on_request(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("takeover listener lost the Redis (%s); subscribing again", exc)
                await asyncio.sleep(RELISTEN_DELAY_S)
            finally:
                await pubsub.aclose()
