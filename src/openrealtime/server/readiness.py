"""Whether this front door can take more work now, and how loaded it is: ``/healthz``, ``/readyz`` and
``/livez`` (issue 10: ``/healthz`` said "ok" through every overload; issue 15: a load balancer needs
the load and the drain). The contract is written down in docs/readiness.md.

Four things make it unready, each with its own reason, named in this order of precedence:

- ``loading``: the engines are not loaded yet;
- ``draining``: the door is draining (SIGTERM, :mod:`~openrealtime.server.drain`): it finishes the
  sessions it holds and takes no new ones;
- ``at_capacity``: every session kind is at its admission limit
  (:meth:`~openrealtime.server.admission.Admission.all_full`), so any connect would be refused
  (``/readyz?kind=realtime``: that kind is);
- ``event_loop_lagging``: the event loop runs its timers late. :class:`LoopLag` measures it with one
  timer that re-arms itself every ``LAG_INTERVAL_S``: the lag is how late it ran. A loop that lags
  answers every session late (frames, audio deltas, ``/healthz`` itself). Above ``LAG_UNREADY_S`` the
  server turns unready, and it turns ready again only below ``LAG_READY_S`` (hysteresis, so a lag near
  the threshold does not flap). A timer that is overdue now counts as well, so the first answer after
  the loop was blocked already says so.

``/healthz`` keeps its first shape (``status``, ``reason``, ``active_sessions``); ``/readyz`` adds the
load (:func:`load_report`: sessions open against each kind's limit, calls, the engine queues, the
loop's lag), and ``/livez`` answers 200 as long as the process serves at all, so a liveness probe
never restarts a door that is only full or draining. The status and reason are open to probes; the
load and counts only to whoever holds the key, when one is set (docs/security.md).

All of it is a few comparisons: the probes stay cheap, and the timer costs ten callbacks a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.scheduler import WorkerStats
from openrealtime.server.admission import UNLIMITED, Admission

LAG_INTERVAL_S = 0.1
LAG_UNREADY_S = 0.25
LAG_READY_S = 0.1

LOADING = "loading"
DRAINING = "draining"
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


def readiness(*, loaded: bool, all_full: bool, lagging: bool, draining: bool = False) -> Readiness:
    """The verdict, in order: engines first (nothing works without them), then the drain (a door on
    its way out is not coming back), then capacity, then lag."""
    if not loaded:
        return Readiness(LOADING)
    if draining:
        return Readiness(DRAINING)
    if all_full:
        return Readiness(AT_CAPACITY)
    if lagging:
        return Readiness(LOOP_LAGGING)
    return Readiness(None)


def load_report(
    admission: Admission, *, calls: int, workers: Mapping[str, WorkerStats], lag_s: float
) -> dict[str, object]:
    """The load ``/readyz`` reports: per session kind the sessions open, the limit (``null``:
    unlimited) and whether it is full; WebRTC calls in progress (also counted in their kind's
    ``open``); jobs waiting in each engine worker; the event loop's lag."""
    sessions = {
        kind.value: {
            "open": admission.open.get(kind, 0),
            "limit": None if admission.limits.get(kind, UNLIMITED) == UNLIMITED else admission.limits[kind],
            "full": admission.full(kind),
        }
        for kind in admission.limits
    }
    engines = {name: {"queued": stats.queued} for name, stats in workers.items()}
    return {"sessions": sessions, "calls": calls, "engines": engines, "event_loop_lag_ms": round(lag_s * 1000, 1)}


HTTP_OK = 200
HTTP_BAD_REQUEST = 400
HTTP_SERVICE_UNAVAILABLE = 503


class Probes:
    """The probe routes over one server: ``/healthz`` and ``/readyz`` (readiness), ``/livez`` (liveness).

    Args:
        verdict: The door's readiness now.
        admission: Its sessions by kind (``/readyz?kind=`` reads one kind's fullness from it).
        load: The load report (called only for a caller allowed to see it).
        may_see_load: Whether the request may see counts and load (the key, when one is set).
        on_unready: Called with the reason of each 503 (``/metrics`` counts them).
    """

    def __init__(
        self,
        verdict: Callable[[], Readiness],
        admission: Admission,
        load: Callable[[], dict[str, object]],
        may_see_load: Callable[[Request], Awaitable[bool]],
        on_unready: Callable[[str], None],
    ) -> None:
        self._verdict = verdict
        self._admission = admission
        self._load = load
        self._may_see_load = may_see_load
        self._on_unready = on_unready

    def routes(self) -> list[Route]:
        return [Route("/healthz", self.healthz), Route("/readyz", self.readyz), Route("/livez", self.livez)]

    def _answer(self, verdict: Readiness) -> tuple[dict[str, object], int]:
        if verdict.reason is not None:
            self._on_unready(verdict.reason)
            return {"status": "unready", "reason": verdict.reason}, HTTP_SERVICE_UNAVAILABLE
        return {"status": "ok"}, HTTP_OK

    async def healthz(self, request: Request) -> Response:
        """200 ``{"status": "ok"}``, else 503 ``{"status": "unready", "reason": ...}``; with the key
        (or none set) ``active_sessions`` too."""
        verdict = self._verdict()
        body, status = self._answer(verdict)
        if verdict.reason != LOADING and await self._may_see_load(request):
            body["active_sessions"] = self._admission.total()
        return JSONResponse(body, status_code=status)

    async def readyz(self, request: Request) -> Response:
        """As ``/healthz``, ``reason`` always present (``null`` when ready), and the load with the key;
        ``?kind=realtime|transcription|translation``: unready (``at_capacity``) when that kind is full."""
        kind_name = request.query_params.get("kind")
        verdict = self._verdict()
        if kind_name is not None:
            try:
                kind = SessionKind(kind_name)
            except ValueError:
                kinds = ", ".join(k.value for k in self._admission.limits)
                error = {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": f"Invalid 'kind': {kind_name!r}; expected one of {kinds}.",
                    "param": "kind",
                }
                return JSONResponse({"error": error}, status_code=HTTP_BAD_REQUEST)
            if verdict.ready and self._admission.full(kind):
                verdict = Readiness(AT_CAPACITY)
        body, status = self._answer(verdict)
        body["reason"] = verdict.reason
        if verdict.reason != LOADING and await self._may_see_load(request):
            body.update(self._load())
        return JSONResponse(body, status_code=status)

    async def livez(self, request: Request) -> Response:
        """200 while the process serves requests, whatever its readiness."""
        return JSONResponse({"status": "ok"})
