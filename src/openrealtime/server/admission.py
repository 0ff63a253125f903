"""How many sessions of each kind may be open at once, and what a connect is told when they are all taken.

Each kind has its own limit because each costs something different (docs/benchmarks.md): a
transcription session shares Whisper, a realtime session holds an LLM slot and a voice as well. A
connect past the limit is refused like any connect-time problem: one ``error`` event, then a close
with 1013 ("Try Again Later", RFC 6455 §7.4.1's registry), so a client can tell "come back later"
from "you are wrong". The refusal is logged once per full spell (when a kind first turns a connect
away, and again only after a place has freed), not once per connect: 2,000 connects at a full
server write one line, and ``openrealtime_refusals_total{reason="capacity"}`` counts them all.

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
LOG_FULL = "refusing %s sessions: all %d places are taken (logged once until one frees)"


@dataclass
class Admission:
    """Open sessions by kind against their limits (``0``: unlimited)."""

    limits: Mapping[SessionKind, int]
    open: dict[SessionKind, int] = field(default_factory=dict)
    _full: set[SessionKind] = field(default_factory=set)

    def admit(self, kind: SessionKind) -> bool:
        """Take a place for a session of ``kind``; ``False`` (logged once per full spell) when none is left."""
        limit = self.limits.get(kind, UNLIMITED)
        count = self.open.get(kind, 0)
        if limit != UNLIMITED and count >= limit:
            if kind not in self._full:
                self._full.add(kind)
                log.warning(
                    "refusing %s sessions: all %d places are taken (logged once until one frees)", kind.value, limit
                )
            return False
        self.open[kind] = count + 1
        return True

    def release(self, kind: SessionKind) -> None:
        """Give back the place of a session that closed."""
        self.open[kind] -= 1
        self._full.discard(kind)

    def all_full(self) -> bool:
        """Every kind at its limit: any connect now would be refused (never, while a kind is unlimited)."""
        return all(limit != UNLIMITED and self.open.get(kind, 0) >= limit for kind, limit in self.limits.items())

    def total(self) -> int:
        """Sessions open now, all kinds."""
        return sum(self.open.values())

    def refusal_message(self, kind: SessionKind) -> str:
        """What the ``error`` event says to a connect turned away."""
        return f"This server is serving its limit of {self.limits[kind]} {kind.value} sessions; try again later."
