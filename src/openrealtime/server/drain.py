"""Graceful drain of one front door (SIGTERM; the signal itself is :mod:`~openrealtime.server.shutdown`'s).

A drain takes the door out of service without losing a conversation (issue 15; the contract is
docs/readiness.md):

1. **Nothing new.** :class:`~openrealtime.server.admission.Admission` turns draining: readiness says
   ``draining`` (so the load balancer stops sending sessions here) and every connect, resumes
   included, gets ``server_draining`` and 1013; a WebRTC call a 503.
2. **What runs, finishes.** Each WebSocket session is ended as soon as it is between turns: no user
   turn open (``speech_started`` not yet ``committed`` or ``cleared``), no response in progress
   (``response.created`` without its ``response.done``), no call audio playing, and no engine job
   running (a decode, an answer's tokens or speech). :class:`Activity` follows the first three from
   the events the session sends; the connection counts its jobs
   (:attr:`~openrealtime.runtime.connection.Connection.jobs_running`).
3. **The rest, at the end of the grace** (``--drain-grace-s``): whatever they are doing.

A session is ended with an ``error`` (``server_error``, code ``server_shutting_down``, its message
naming the ``session_id`` to resume), then close 1012 ("Service Restart", RFC 6455 §7.4.1), which
our client library (:mod:`~openrealtime.client.failover`) and the ``openai`` SDK's
``on_reconnecting`` take as "reconnect, elsewhere". Its state's last write happens as its connection
ends, before this door lets go of the session in a shared store, and a resume on another door waits
for that (:class:`~openrealtime.server.resume.LiveSessions`): with ``--state-url redis://`` nothing
is lost. WebRTC calls cannot move: they run on until the grace ends (or end on their own), then are
hung up. The drain is over when every session has let go (``RELEASE_TIMEOUT_S`` at most after the
grace); then the process exits 0.

Whether a busy session has turned quiet is looked at every ``WATCH_INTERVAL_S`` (and at once when a
session lets go): the engine jobs have no callback of their own, and a drain is rare and short, so a
light watch beats threading a notification through the runtime.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from openrealtime.protocol import server_events as se
from openrealtime.server.admission import Admission

log = logging.getLogger(__name__)

DEFAULT_DRAIN_GRACE_S = 30.0
CLOSE_SERVICE_RESTART = 1012
SHUTTING_DOWN_CODE = "server_shutting_down"
SHUTTING_DOWN_TYPE = "server_error"
WATCH_INTERVAL_S = 0.05
RELEASE_TIMEOUT_S = 10.0  # after the grace: the last closes and state writes

# What opens and what closes a piece of work a session is in the middle of, by server event type
# (h11's way: the transitions as a table). A response is keyed by its id (several may run at once).
_OPENS = {
    "input_audio_buffer.speech_started": "speech",
    "output_audio_buffer.started": "playback",
}
_CLOSES = {
    "input_audio_buffer.committed": "speech",
    "input_audio_buffer.cleared": "speech",
    "output_audio_buffer.stopped": "playback",
    "output_audio_buffer.cleared": "playback",
}


def shutting_down_message(session_id: str) -> str:
    """The ``error`` a drained session gets, also its close reason (under 123 bytes)."""
    return f"This server is shutting down; reconnect with session_id={session_id} to resume on another."


class Activity:
    """Whether a session is in the middle of a turn, from the server events it sent (pure)."""

    def __init__(self) -> None:
        self._open: set[str] = set()

    def observe(self, event: se.ServerEvent) -> None:
        kind = event.type
        if kind in _OPENS:
            self._open.add(_OPENS[kind])
        elif kind in _CLOSES:
            self._open.discard(_CLOSES[kind])
        elif isinstance(event, se.ResponseCreated | se.ResponseDone):
            key = f"response:{event.response.get('id')}"
            if isinstance(event, se.ResponseCreated):
                self._open.add(key)
            else:
                self._open.discard(key)

    @property
    def in_turn(self) -> bool:
        """A user turn, a response or call audio is under way."""
        return bool(self._open)


class Drainable(Protocol):
    """A live session's connection, as the drain sees it (:class:`~openrealtime.runtime.connection.Connection`)."""

    @property
    def jobs_running(self) -> int: ...

    def end(self, code: str, message: str, close_code: int = ..., error_type: str = ...) -> None: ...


class Calls(Protocol):
    """The WebRTC calls of the door (:class:`~openrealtime.server.calls.CallsApi`)."""

    @property
    def live(self) -> int: ...

    async def close(self) -> None: ...


@dataclass
class _Held:
    session_id: str
    activity: Activity
    ended: bool = False


@dataclass
class DrainReport:
    """What a drain did: sessions ended between turns, ended at the grace's end, still held at exit."""

    quiet: int = 0
    cut: int = 0
    calls_hung_up: int = 0
    left: int = 0
    seconds: float = 0.0
    ended: list[str] = field(default_factory=list)


class Drain:
    """One door's drain: the sessions it holds, and :meth:`run`.

    Args:
        admission: The door's admission (turned draining by :meth:`run`).
        grace_s: How long running turns may go on before every session is ended.
        calls: The door's WebRTC calls, hung up at the grace's end.
    """

    def __init__(
        self, admission: Admission, grace_s: float = DEFAULT_DRAIN_GRACE_S, calls: Calls | None = None
    ) -> None:
        self.admission = admission
        self.grace_s = grace_s
        self._calls = calls
        self._held: dict[Drainable, _Held] = {}
        self._changed = asyncio.Event()
        self.report: DrainReport | None = None

    @property
    def draining(self) -> bool:
        return self.admission.draining

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, connection: Drainable, session_id: str, activity: Activity) -> None:
        """A session is served on ``connection`` (its events observed by ``activity``)."""
        self._held[connection] = _Held(session_id, activity)

    def release(self, connection: Drainable) -> None:
        """``connection`` has ended and its state is written."""
        if self._held.pop(connection, None) is not None:
            self._changed.set()

    async def run(self) -> DrainReport:
        """Drain: take nothing new, end each session between turns, the rest at the grace's end, hang
        up the calls; return once every session has let go (or ``RELEASE_TIMEOUT_S`` later)."""
        self.admission.draining = True
        report = self.report = DrainReport()
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.grace_s
        log.info(
            "draining: %d sessions, %d calls; up to %g s for their turns", len(self), self._live_calls(), self.grace_s
        )
        while (self._held or self._live_calls()) and loop.time() < deadline:
            report.quiet += self._end(everyone=False)
            await self._wait(min(WATCH_INTERVAL_S, deadline - loop.time()))
        report.cut = self._end(everyone=True)
        if self._calls is not None and self._calls.live:
            report.calls_hung_up = self._calls.live
            await self._calls.close()
        release_by = loop.time() + RELEASE_TIMEOUT_S
        while self._held and loop.time() < release_by:
            await self._wait(release_by - loop.time())
        report.left, report.seconds = len(self._held), loop.time() - started
        log.info(
            "drained in %.1f s: %d sessions ended between turns, %d cut at the grace's end, %d calls hung up%s",
            report.seconds,
            report.quiet,
            report.cut,
            report.calls_hung_up,
            f", {report.left} never let go" if report.left else "",
        )
        return report

    def _live_calls(self) -> int:
        return self._calls.live if self._calls is not None else 0

    def _end(self, *, everyone: bool) -> int:
        """End every held session not yet ended that is between turns (``everyone``: all); how many."""
        count = 0
        for connection, held in list(self._held.items()):
            quiet = connection.jobs_running == 0 and not held.activity.in_turn
            if not held.ended and (everyone or quiet):
                held.ended = True
                count += 1
                message = shutting_down_message(held.session_id)
                connection.end(SHUTTING_DOWN_CODE, message, CLOSE_SERVICE_RESTART, SHUTTING_DOWN_TYPE)
                assert self.report is not None
                self.report.ended.append(held.session_id)
        return count

    async def _wait(self, timeout_s: float) -> None:
        """Until a session lets go, or ``timeout_s``."""
        self._changed.clear()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._changed.wait()
        except TimeoutError:
            pass
