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
# Bytes a memory store keeps in all (text and audio); past it the sessions written longest ago go
# first. A session keeps up to 60 s of turn audio, 1.9 MB of PCM16: 256 sessions' worth at most.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
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
    size: int = 0  # characters of text and bytes of audio held


class MemoryStateStore:
    """Sessions' state in this process's memory, as the same text Redis would hold.

    Args:
        max_sessions: Sessions kept at once; past it the one written longest ago is dropped.
        max_bytes: Text and audio kept in all; past it the sessions written longest ago are dropped
            (never the one being written).
        clock: Monotonic seconds (a test clock in tests).
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._held: dict[str, _Held] = {}  # insertion order = least recently written first
        self._max = max_sessions
        self._max_bytes = max_bytes
        self._bytes = 0
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
        before = held.size
        if change.meta is not None:
            held.size += len(change.meta) - len(held.meta or "")
            held.meta = change.meta
        if change.order is not None:
            held.size += len(change.order) - len(held.order or "")
            held.order = change.order
        for item_id, text in change.items.items():
            held.size += len(text) - len(held.items.get(item_id, ""))
            held.items[item_id] = text
        for item_id, data in change.audio.items():
            held.size += len(data) - len(held.audio.get(item_id, b""))
            held.audio[item_id] = data
        for item_id in change.removed:
            held.size -= len(held.items.pop(item_id, "")) + len(held.audio.pop(item_id, b""))
        self._bytes += held.size - before
        held.deadline = self._clock() + ttl_s
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep()
        while len(self._held) > 1 and (len(self._held) > self._max or self._bytes > self._max_bytes):
            self._drop(next(iter(self._held)))

    async def load(self, session_id: str) -> SessionState | None:
        held = self._held.get(session_id)
        if held is None or held.meta is None:
            return None
        if held.deadline <= self._clock():
            self._drop(session_id)
            return None
        items: dict[str, str | bytes] = dict(held.items)
        return SessionState.decode(session_id, held.meta, held.order, items, dict(held.audio))

    async def delete(self, session_id: str) -> None:
        self._drop(session_id)

    async def close(self) -> None:
        self._held.clear()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """Text and audio held now."""
        return self._bytes

    def _drop(self, session_id: str) -> None:
        held = self._held.pop(session_id, None)
        if held is not None:
            self._bytes -= held.size

    def _sweep(self) -> None:
        now = self._clock()
        for session_id in [s for s, h in self._held.items() if h.deadline <= now]:
            self._drop(session_id)


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
