"""Whether the server can take more work now: what ``/healthz`` answers (issue 10: it said "ok" through
every overload).

Three things make it unready, each with its own reason:

- ``loading``: the engines are not loaded yet;
- ``at_capacity``: every session kind is at its admission limit
  (:meth:`~openrealtime.server.admission.Admission.all_full`), so any connect would be refused;
- ``event_loop_lagging``: the event loop runs its timers late. :class:`LoopLag` measures it with one
  timer that re-arms itself every ``LAG_INTERVAL_S``: the lag is how late it ran. A loop that lags
  answers every session late (frames, audio deltas, ``/healthz`` itself). Above ``LAG_UNREADY_S`` the
  server turns unready, and it turns ready again only below ``LAG_READY_S`` (hysteresis, so a lag near
  the threshold does not flap). A timer that is overdue now counts as well, so the first answer after
  the loop was blocked already says so.

All of it is a few comparisons: ``/healthz`` stays cheap, and the timer costs ten callbacks a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

LAG_INTERVAL_S = 0.1
LAG_UNREADY_S = 0.25
LAG_READY_S = 0.1

LOADING = "loading"
AT_CAPACITY = "at_capacity"
LOOP_LAGGING = "event_loop_lagging"


@dataclass(frozen=True)
class Readiness:
    """``reason`` is ``None`` when ready."""

    reason: str | None

    @property
    def ready(self) -> bool:
        return self.reason is None


class LoopLag:
    """The event loop's lag, measured by a self re-arming timer, with hysteresis on the verdict."""

    def __init__(
        self,
        interval_s: float = LAG_INTERVAL_S,
        *,
        unready_s: float = LAG_UNREADY_S,
        ready_s: float = LAG_READY_S,
    ) -> None:
        self.interval_s, self.unready_s, self.ready_s = interval_s, unready_s, ready_s
        self.lag_s = 0.0  # the last measured lag
        self.max_lag_s = 0.0  # the largest since start
        self.lagging = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        """Start measuring on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._arm(self._loop.time())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None

    def _arm(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.interval_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.observe(now - self._due)
        self._arm(now)

    def observe(self, lag_s: float) -> None:
        """Take one measured lag (the timer does; tests may too)."""
        self.lag_s = max(0.0, lag_s)
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        if self.lag_s > self.unready_s:
            self.lagging = True
        elif self.lag_s < self.ready_s:
            self.lagging = False

    def overdue_s(self) -> float:
        """How late the pending timer is now (``0`` when it is not due yet, or when not measuring)."""
        if self._loop is None:
            return 0.0
        return max(0.0, self._loop.time() - self._due)

    def is_lagging(self) -> bool:
        """The verdict: lagging by the last measure, or by how overdue the next one is already."""
        return self.lagging or self.overdue_s() > self.unready_s


def readiness(*, loaded: bool, all_full: bool, lagging: bool) -> Readiness:
    """The verdict, in order: engines first (nothing works without them), then capacity, then lag."""
    if not loaded:
        return Readiness(LOADING)
    if all_full:
        return Readiness(AT_CAPACITY)
    if lagging:
        return Readiness(LOOP_LAGGING)
    return Readiness(None)
