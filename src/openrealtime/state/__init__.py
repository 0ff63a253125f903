"""Durable session state for resumable sessions (``?session_id=sess_...``, docs/compatibility.md).

A session's state (its config, its conversation items with their text and a bounded amount of their
audio) is written to a :class:`~openrealtime.state.store.StateStore` as it changes, by a
:class:`~openrealtime.state.recorder.Recorder` that follows the session's server events; a client that
lost its connection reconnects with the session's id within the grace window and gets it back
(:mod:`~openrealtime.server.resume`). The store is process memory by default
(:class:`~openrealtime.state.store.MemoryStateStore`), or Redis with ``--state-url redis://...``
(:mod:`~openrealtime.state.redis_store`), so any front door can resume a session.
"""

from openrealtime.state.records import ItemRecord, SessionState, StateChange
from openrealtime.state.store import MemoryStateStore, StateStore, open_store

__all__ = ["ItemRecord", "MemoryStateStore", "SessionState", "StateChange", "StateStore", "open_store"]
