"""Which front door holds each WebRTC call, for the doors that share a ``--state-url redis://``.

A call lives in one process: its peer connection, UDP ports and session are there. Its hang-up
(``POST /v1/realtime/calls/{id}/hangup``) and its sidebands (``GET /v1/realtime?call_id=``) may land
on any door behind the load balancer, so the door that answered the offer records
``openrealtime:call:<call id>`` → its advertised URL (``--advertise-url``), and a door that does not
hold a call looks the owner up there and forwards (:mod:`~openrealtime.server.forwarding`).

An entry expires on its own (a call lasts at most the session lifetime); it is not removed when the
call ends, because a stale entry is harmless: the owner answers ``call_not_found`` for a call it no
longer holds, and a door that does not answer holds no calls. With the memory store there is one
door, and no directory (:func:`open_call_directory` returns ``None``).
"""

from __future__ import annotations

from typing import Any, Protocol

from openrealtime.state.redis_store import redis_client

KEY_PREFIX = "openrealtime:call:"


class CallDirectory(Protocol):
    """Call id → the URL of the front door that holds the call."""

    async def place(self, call_id: str, door_url: str, ttl_s: float) -> None:
        """Record that ``door_url`` holds ``call_id``, for ``ttl_s`` seconds at most."""
        ...

    async def door_of(self, call_id: str) -> str | None:
        """The URL of the door that holds ``call_id``; ``None`` when no door recorded it."""
        ...

    async def close(self) -> None: ...


class RedisCallDirectory:
    """The directory in Redis, through ``redis.asyncio``."""

    def __init__(self, client: Any) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisCallDirectory:
        return cls(redis_client(url))

    async def place(self, call_id: str, door_url: str, ttl_s: float) -> None:
        await self._redis.set(KEY_PREFIX + call_id, door_url, px=max(1, int(ttl_s * 1000)))

    async def door_of(self, call_id: str) -> str | None:
        value = await self._redis.get(KEY_PREFIX + call_id)
        return value.decode() if value is not None else None

    async def close(self) -> None:
        await self._redis.aclose()


def open_call_directory(state_url: str | None) -> CallDirectory | None:
    """The directory for a ``--state-url``: Redis for ``redis://``, ``rediss://`` and ``unix://``;
    ``None`` (one door, nothing to share) otherwise."""
    scheme = state_url.split("://", 1)[0].lower() if state_url and "://" in state_url else ""
    if state_url is not None and scheme in ("redis", "rediss", "unix"):
        return RedisCallDirectory.from_url(state_url)
    return None
