"""The state store: where sessions' durable state lives between connections.

:class:`StateStore` is what the server needs: write a session's changed parts (each write also
keeps the whole session for ``ttl_s`` more seconds: the resume grace window after its last write),
read a session back, drop it. :class:`MemoryStateStore` keeps it in this process (the default: a
resume works on this server only, and not across a restart); ``--state-url redis://host:port/db``
keeps it in Redis (:mod:`~openrealtime.state.redis_store`) for every server that shares it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from openrealtime.state.records import SessionState, StateChange

DEFAULT_MAX_SESSIONS = 10_000  # sessions a memory store keeps at once; the oldest written is dropped past it
_SWEEP_EVERY = 256  # writes between two sweeps of expired sessions


class StateStore(Protocol):
    """Sessions' durable state, written part by part as it changes."""

    async def save(self, session_id: str, change: StateChange, ttl_s: float) -> None:
        """Write ``change`` and keep the session ``ttl_s`` seconds from now (an empty change only
        extends it)."""
        ...

    async def load(self, session_id: str) -> SessionState | None:
        """The session as last written; ``None`` when unknown or expired."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _Held:
    meta: str | None = None
    order: str | None = None
    items: dict[str, str] = field(default_factory=dict)
    audio: dict[str, bytes] = field(default_factory=dict)
    deadline: float = 0.0


class MemoryStateStore:
    """Sessions' state in this process's memory, as the same text Redis would hold.

    Args:
        max_sessions: Sessions kept at once; past it the one written longest ago is dropped.
        clock: Monotonic seconds (a test clock in tests).
    """

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS, clock: Callable[[], float] = time.monotonic):
        self._held: dict[str, _Held] = {}  # insertion order = least recently written first
        self._max = max_sessions
        self._clock = clock
        self._writes = 0

    def __len__(self) -> int:
        return len(self._held)

    async def save(self, session_id: str, change: StateChange, ttl_s: float) -> None:
        self.save_now(session_id, change, ttl_s)

    def save_now(self, session_id: str, change: StateChange, ttl_s: float) -> None:
        """:meth:`save`, without the coroutine (the memory store never waits)."""
        held = self._held.pop(session_id, None) or _Held()
        self._held[session_id] = held  # moved last: the most recently written
        if change.meta is not None:
            held.meta = change.meta
        if change.order is not None:
            held.order = change.order
        held.items.update(change.items)
        held.audio.update(change.audio)
        for item_id in change.removed:
            held.items.pop(item_id, None)
            held.audio.pop(item_id, None)
        held.deadline = self._clock() + ttl_s
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep()
        while len(self._held) > self._max:
            del self._held[next(iter(self._held))]

    async def load(self, session_id: str) -> SessionState | None:
        held = self._held.get(session_id)
        if held is None or held.meta is None:
            return None
        if held.deadline <= self._clock():
            del self._held[session_id]
            return None
        items: dict[str, str | bytes] = dict(held.items)
        return SessionState.decode(session_id, held.meta, held.order, items, dict(held.audio))

    async def delete(self, session_id: str) -> None:
        self._held.pop(session_id, None)

    async def close(self) -> None:
        self._held.clear()

    def _sweep(self) -> None:
        now = self._clock()
        for session_id in [s for s, h in self._held.items() if h.deadline <= now]:
            del self._held[session_id]


class StoreUnavailable(RuntimeError):
    """The store named by ``--state-url`` does not answer."""


async def check_store(store: StateStore) -> None:
    """Raise :class:`StoreUnavailable` unless ``store`` answers (a store without ``ping`` always does)."""
    ping = getattr(store, "ping", None)
    if ping is None:
        return
    try:
        await ping()
    except Exception as exc:
        raise StoreUnavailable(str(exc)) from exc


def open_store(url: str | None) -> StateStore:
    """The store a ``--state-url`` names: ``None`` or ``memory://`` for this process's memory,
    ``redis://host:port/db`` (or ``rediss://``, ``unix://``) for Redis.

    Raises:
        ValueError: A URL of another scheme.
    """
    if url is None or url in ("", "memory://", "memory"):
        return MemoryStateStore()
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        from openrealtime.state.redis_store import RedisStateStore

        return RedisStateStore.from_url(url)
    raise ValueError(f"unsupported --state-url {url!r}: use memory:// or redis://host:port/db")
