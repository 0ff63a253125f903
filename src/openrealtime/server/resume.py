"""Resumable sessions (our extension, docs/compatibility.md): ``?session_id=sess_...`` on a connect
gives back a session whose connection was lost, within the grace window (``--resume-grace-s``).

A resume opens a new sans-I/O session with the stored session's id, kind and model, applies its
stored config the way a client's ``session.update`` would (:func:`~openrealtime.server.sessions.configured`,
so ``session.created`` shows it, with a new ``expires_at``), and puts its conversation back without
an event (:func:`~openrealtime.state.restore.restore_into`). No session is held by two live
connections: a resume of a session still connected ends the old connection first (an ``error`` with
code ``session_resumed_elsewhere``, then close 4009), on this server or, with a shared store, on
another, and waits for its last write.

Refused with an ``error`` and close 4000: an id that is not known here (never was, or its grace
window ran out) as ``session_not_found``; a session of another kind than the route's as
``session_type_mismatch``. A client secret resumes only a session of its own kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.secrets import ClientSecret
from openrealtime.server.sessions import (
    MISMATCH_CODE,
    Opened,
    Refusal,
    configured,
    fresh_session,
    parse_session_config,
)
from openrealtime.server.settings import Settings
from openrealtime.session.ids import Ids
from openrealtime.state.records import SessionState
from openrealtime.state.restore import restore_into
from openrealtime.state.store import StateStore

log = logging.getLogger(__name__)

RESUME_PARAM = "session_id"
NOT_FOUND_CODE = "session_not_found"
TAKEN_OVER_CODE = "session_resumed_elsewhere"
TAKEN_OVER_MESSAGE = "This session was resumed by another connection; this one is closed."
# Not 1001: clients (the openai SDK among them) reconnect after 1001 on their own, and would take the
# session back. 4009, in the application's range, is a conflict (as HTTP's 409).
CLOSE_TAKEN_OVER = 4009
TAKEOVER_TIMEOUT_S = 10.0  # how long a resume waits for the old connection to end and write its state
TAKEOVER_POLL_S = 0.05  # how often a resume looks whether another server has let the session go
# The stored session object's fields that are the session's, not its config.
_NOT_CONFIG = ("object", "id", "expires_at")


class Endable(Protocol):
    """A live connection that can be ended from outside (:class:`~openrealtime.runtime.connection.Connection`)."""

    def end(self, code: str, message: str, close_code: int = ...) -> None: ...


@dataclass
class _Live:
    connection: Endable
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@runtime_checkable
class SharedOwnership(Protocol):
    """Who holds each session, shared by the servers on one store (Redis: ``state/redis_store.py``)."""

    async def claim(self, session_id: str, owner: str, ttl_s: float) -> None: ...

    async def release(self, session_id: str, owner: str) -> None: ...

    async def owner_of(self, session_id: str) -> str | None: ...

    async def ask_release(self, owner: str, session_id: str) -> int:
        """Ask ``owner`` to let ``session_id`` go; how many of its listeners heard (0: it is gone)."""
        ...

    async def listen(self, owner: str, on_request: Callable[[str], None]) -> None: ...


class LiveSessions:
    """The sessions this server holds a connection for, by id: a resume takes one over.

    With a store that servers share (Redis), each held session is also claimed there under this
    server's id, so a resume on another server asks this one to end its connection (and waits until
    it has let go, or ``TAKEOVER_TIMEOUT_S``). A server that died holds nothing: nobody hears the
    request on its channel, and the resume goes on at once instead of waiting."""

    def __init__(self, shared: SharedOwnership | None = None, ttl_s: float = 900.0) -> None:
        self._live: dict[str, _Live] = {}
        self._shared = shared
        self._ttl_s = ttl_s
        self.server_id = Ids().new("door")
        self._listener: asyncio.Task[None] | None = None

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._live

    def start(self) -> None:
        """Listen for other servers' takeovers (with a shared store)."""
        if self._shared is not None:
            self._listener = asyncio.get_running_loop().create_task(self._shared.listen(self.server_id, self._end))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def hold(self, session_id: str, connection: Endable) -> None:
        self._live[session_id] = _Live(connection)
        if self._shared is not None:
            with _logged("claim", session_id):
                await self._shared.claim(session_id, self.server_id, self._ttl_s)

    async def release(self, session_id: str, connection: Endable) -> None:
        """The connection ended and its state is written: a resume waiting on it may go on."""
        live = self._live.get(session_id)
        if live is None or live.connection is not connection:
            return
        try:
            if self._shared is not None:
                with _logged("release", session_id):
                    await self._shared.release(session_id, self.server_id)
        finally:  # let go here even if the shared store's release was cancelled
            del self._live[session_id]
            live.ended.set()

    def _end(self, session_id: str) -> None:
        live = self._live.get(session_id)
        if live is not None:
            log.info("session %s resumed on another server: ending its connection here", session_id)
            live.connection.end(TAKEN_OVER_CODE, TAKEN_OVER_MESSAGE, CLOSE_TAKEN_OVER)

    async def take_over(self, session_id: str) -> None:
        """End the connection holding ``session_id``, here or on another server, and wait until it
        has let go."""
        live = self._live.get(session_id)
        if live is not None:
            log.info("session %s resumed while connected: ending the old connection", session_id)
            self._end(session_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAKEOVER_TIMEOUT_S):
                    await live.ended.wait()
        if self._shared is not None:
            with _logged("take over", session_id):
                await self._take_over_elsewhere(self._shared, session_id)

    async def _take_over_elsewhere(self, shared: SharedOwnership, session_id: str) -> None:
        owner = await shared.owner_of(session_id)
        if owner is None or owner == self.server_id:
            return
        if await shared.ask_release(owner, session_id) == 0:
            # Nobody listens on its channel: the server died (a SIGKILL closes its Redis socket, and
            # its subscription with it), so there is no connection to wait for.
            log.info("session %s: its server %s is gone; taken over at once", session_id, owner)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TAKEOVER_TIMEOUT_S):
                while await shared.owner_of(session_id) == owner:  # noqa: ASYNC110 - it lets go in Redis
                    await asyncio.sleep(TAKEOVER_POLL_S)


@contextlib.contextmanager
def _logged(what: str, session_id: str) -> Iterator[None]:
    """A shared store's failure is logged; the session goes on (held here only)."""
    try:
        yield
    except Exception:
        log.exception("%s of session %s in the shared store failed", what, session_id)


@dataclass(frozen=True)
class Resumed:
    """A resumed session ready to be driven, and the stored state it came from."""

    opened: Opened
    state: SessionState


def not_found(session_id: str, grace_s: float) -> Refusal:
    return Refusal(
        f"Session '{session_id}' cannot be resumed: it is unknown, or its connection ended more than "
        f"{grace_s:g} seconds ago. Connect without session_id to start a new session.",
        NOT_FOUND_CODE,
        param=RESUME_PARAM,
    )


async def resume(
    session_id: str,
    kinds: tuple[SessionKind, ...],
    *,
    store: StateStore,
    live: LiveSessions,
    settings: Settings,
    engines: EngineSet,
    secret: ClientSecret | None = None,
) -> Resumed | Refusal:
    """Session ``session_id`` back, for a connect on a route that serves ``kinds``."""
    await live.take_over(session_id)
    state = await store.load(session_id) if session_id.startswith("sess_") else None
    if state is None:
        return not_found(session_id, settings.resume_grace_s)
    kind = SessionKind(state.meta.kind)
    if kind not in kinds or (secret is not None and secret.kind is not kind):
        return Refusal(
            f"Session '{session_id}' is a {kind.value} session; it cannot be resumed here or with this key.",
            MISMATCH_CODE,
            param=RESUME_PARAM,
        )
    config = {k: v for k, v in state.meta.config.items() if k not in _NOT_CONFIG}
    model = str(config.get("model") or "")
    session = fresh_session(kind, model, settings, engines, session_id=session_id)
    try:
        update = parse_session_config(json.dumps(config), kind)
    except ProtocolError as exc:  # a config stored by another version of the server
        log.warning("stored config of %s no longer applies: %s", session_id, exc.message)
        return Refusal(exc.message, exc.code, error_type=exc.error_type, param=exc.param)
    opened = configured(Opened(session, kind), update)
    if isinstance(opened, Refusal):
        return opened
    restore_into(session, state)
    log.info("session %s (%s) resumed with %d items", session_id, kind.value, len(state.order))
    return Resumed(opened, state)


def resume_param(query: Any) -> str | None:
    """The ``session_id`` a connect asks to resume, if any."""
    value = query.get(RESUME_PARAM)
    return str(value) if value is not None else None
