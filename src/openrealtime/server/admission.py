"""Whether this front door takes a new session now, and what a connect is told when it does not.

Two things turn a session away, each with its own documented ``error`` code (docs/readiness.md):

- ``session_limit_reached``: every place for that kind of session is taken. Each kind has its own
  limit because each costs something different (docs/benchmarks.md): a transcription session shares
  Whisper, a realtime session holds an LLM slot and a voice as well;
- ``server_draining``: the door is draining (SIGTERM, :mod:`~openrealtime.server.drain`): it finishes
  what it holds and takes nothing new, resumes included.

Either way the refusal is what any connect-time problem gets: one ``error`` event (``type``
``server_error``), then a close with 1013 ("Try Again Later", RFC 6455 §7.4.1's registry), so a
client can tell "come back later, or go to another door" from "you are wrong"; the ``openai`` SDK
counts 1013 as recoverable, and our client library tries its next door
(:mod:`~openrealtime.client.failover`). A WebRTC call gets the same code in a 503 body. The capacity
refusal is logged once per full spell (when a kind first turns a connect away, and again only after
a place has freed), not once per connect: 2,000 connects at a full server write one line, and
``openrealtime_refusals_total{reason="capacity"}`` counts them all (``reason="draining"`` the others).

Counting happens on the event loop with no ``await`` between the check and the taking of a place,
so there is nothing to lock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from openrealtime.protocol.codec import SessionKind

log = logging.getLogger(__name__)

UNLIMITED = 0
CLOSE_TRY_AGAIN_LATER = 1013
CAPACITY_CODE = "session_limit_reached"
DRAINING_CODE = "server_draining"
REFUSAL_TYPE = "server_error"
DRAINING_MESSAGE = "This server is shutting down and takes no new sessions; connect to another."
LOG_FULL = "refusing %s sessions: all %d places are taken (logged once until one frees)"


@dataclass(frozen=True)
class Refused:
    """Why a session was turned away: the ``error`` event's ``code`` and ``message``; ``reason`` is
    the label of ``openrealtime_refusals_total``."""

    code: str
    message: str
    reason: str


@dataclass
class Admission:
    """Open sessions by kind against their limits (``0``: unlimited), and whether the door drains."""

    limits: Mapping[SessionKind, int]
    open: dict[SessionKind, int] = field(default_factory=dict)
    draining: bool = False
    _full: set[SessionKind] = field(default_factory=set)

    def admit(self, kind: SessionKind) -> bool:
        """Take a place for a session of ``kind``; ``False`` while draining or when none is left
        (then :meth:`refusal` says why)."""
        if self.draining:
            return False
        if self.full(kind):
            if kind not in self._full:
                self._full.add(kind)
                log.warning(LOG_FULL, kind.value, self.limits[kind])
            return False
        self.open[kind] = self.open.get(kind, 0) + 1
        return True

    def release(self, kind: SessionKind) -> None:
        """Give back the place of a session that closed."""
        self.open[kind] -= 1
        self._full.discard(kind)

    def full(self, kind: SessionKind) -> bool:
        """Every place for ``kind`` is taken (never, when its limit is unlimited)."""
        limit = self.limits.get(kind, UNLIMITED)
        return limit != UNLIMITED and self.open.get(kind, 0) >= limit

    def all_full(self) -> bool:
        """Every kind at its limit: any connect now would be refused (never, while a kind is unlimited)."""
        return all(self.full(kind) for kind in self.limits)

    def total(self) -> int:
        """Sessions open now, all kinds."""
        return sum(self.open.values())

    def refusal(self, kind: SessionKind) -> Refused:
        """What a connect of ``kind`` that :meth:`admit` turned away is told."""
        if self.draining:
            return Refused(DRAINING_CODE, DRAINING_MESSAGE, "draining")
        return Refused(CAPACITY_CODE, self.refusal_message(kind), "capacity")

    def refusal_message(self, kind: SessionKind) -> str:
        """What the ``error`` event says to a connect turned away because ``kind`` is full."""
        return f"This server is serving its limit of {self.limits[kind]} {kind.value} sessions; try again later."
