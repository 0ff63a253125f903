"""Worker threads per blocking model, shared by every session of the process, served in turn.

Within a priority tier, the session that used the worker least of late goes first, and sessions
otherwise take turns (issue 10 defect 3: with one FIFO, 40 out-of-band responses of one session made
another's question wait 422 s). Each session's job seconds are remembered, each second weighing half
as much ``USAGE_HALF_LIFE_S`` later, so a session that has been flooding the worker yields to one that
just arrived, which waits only for the jobs already running. Each job is also given a *round* when it
is queued: one more than the round of its session's previous queued job, and never less than the
round being served. Jobs run by (priority, recent use, round, arrival): among sessions of equal use, a
session that queues forty jobs has them in forty successive rounds, and one that queues one now has it
in the next round (start-time fair queuing with unit costs).
The session is the ``key`` of a submission; for calls that go through :class:`FairExecutor` it is
:data:`current_session`, which the runtime sets once per connection (asyncio copies it into every task
the connection starts, so each engine call knows whose it is without a parameter in every signature).

Transcription requests are served by priority, then in turn by session, then first come first served:

1. the final decode of a turn (someone is waiting for their transcript, and the speculative final
   started at a pause becomes it),
2. a live-caption partial of a turn that has shown no words yet (its result can make the first
   delta, the figure a speaker notices),
3. every other partial (it only extends captions already shown).

Under load the third tier waits, and since a session keeps at most one partial outstanding, the
partial it sends next covers all the audio that arrived meanwhile: the caption cadence of each
session falls with the load by itself, while finals and first deltas stay fast. A job cancelled
before it starts is never run; one already running finishes and its result is dropped by the
session, which knows it by id.

Bulk work (:data:`bulk_work`: the decodes of a session that sends audio faster than anyone speaks)
comes after every other job, and never takes a worker's last free thread: a live speaker's final
then waits for no decode but its own (issue 10, flood B: behind four sessions at ten times real
time it waited for the two decodes running, 2.1-2.4x its idle latency).

A worker's threads may run at a lower OS priority (``nice``): the ASR's do, so that when a voice
session's answer is being generated and spoken, the LLM and TTS threads get the cores first and live
captions of other speakers wait a little instead (with nothing else to run, niceness costs nothing).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

from openrealtime.exceptions import EngineError
from openrealtime.runtime.threads import lower_priority

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

current_session: contextvars.ContextVar[str] = contextvars.ContextVar("current_session", default="")
"""Whose engine calls these are: set by the runtime for each connection, read when a job is queued."""
bulk_work: contextvars.ContextVar[bool] = contextvars.ContextVar("bulk_work", default=False)
"""Whether the calls are bulk work (audio sent faster than real time, see
:mod:`~openrealtime.runtime.input_pace`): set by the runtime on a job's task, read when it is queued."""

PRIORITY_FINAL = 0
PRIORITY_FIRST_CAPTION = 1
PRIORITY_PARTIAL = 2
SHARE_WINDOW_S = 60.0  # the window over which a worker reports its busiest session's share
# Within a tier, the session that used the worker least of late goes first: its job seconds, each
# weighing half as much USAGE_HALF_LIFE_S later (issue 10: four sessions sending speech at ten times
# real time kept the Whisper worker busy, and a fifth session's one turn waited a round of their
# finals at each step; now it goes next, since it used almost none).
USAGE_HALF_LIFE_S = 10.0
FADED_S = 0.001
MAX_USERS_KEPT = 256


@dataclass(frozen=True)
class WorkerStats:
    """A worker's figures for ``/metrics``: jobs waiting now, thread-seconds spent on jobs since it
    started, and, of the time its jobs took in the last ``SHARE_WINDOW_S``, the largest share one
    session had (with N sessions busy a fair share is 1/N; 1.0 with several means one took it all)."""

    queued: int
    busy_s: float
    top_session_share: float


@dataclass(order=True)
class _Entry(Generic[T]):
    priority: int
    round: int
    sequence: int
    key: str = field(compare=False)
    job_id: str = field(compare=False)
    bulk: bool = field(compare=False)
    call: Callable[[], T] = field(compare=False)
    future: Future[T] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class FirstWords:
    """Work someone is waiting for right now, across engines: a turn's final transcript, an answer's
    first clause. Engines doing later work (an answer's later tokens and clauses, which are far
    ahead of their listener: runtime/pacing.py) let it have the cores: they look at :meth:`waiting`
    between steps and hold back, for a bounded time, while it is true (issue 10 defect 3: on two
    cores, a flooding session's long answers slowed another session's first words several times).
    """

    def __init__(self) -> None:
        self._by_key: collections.Counter[str] = collections.Counter()  # urgent work running, per session
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)

    @contextlib.contextmanager
    def urgent(self, key: str = "") -> Iterator[None]:
        """Mark the enclosed work as someone's first words or final transcript (session ``key``'s)."""
        with self._lock:
            self._by_key[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._by_key[key] -= 1
                if not self._by_key[key]:
                    del self._by_key[key]
                if not self._by_key:
                    self._quiet.notify_all()

    def waiting(self) -> bool:
        """Whether urgent work is running now."""
        return bool(self._by_key)

    def busy(self, key: str) -> bool:
        """Whether session ``key``'s own urgent work is running now (its first clause being voiced:
        the rest of its answer can wait for it)."""
        return self._by_key.get(key, 0) > 0

    def hold_back(self, most_s: float) -> None:
        """Wait while urgent work runs, at most ``most_s`` (later work never waits longer than that)."""
        deadline = time.monotonic() + most_s
        with self._lock:
            while self._by_key and (left := deadline - time.monotonic()) > 0:
                self._quiet.wait(left)


class ModelWorker(Generic[T]):
    """``threads`` threads that run submitted calls, highest priority first, at OS niceness ``nice``."""

    def __init__(self, name: str, *, threads: int = 1, nice: int = 0) -> None:
        self.nice = nice
        self._used: dict[str, tuple[float, float]] = {}  # per session: (job seconds, decayed at when)
        self._queued: dict[str, _Entry[T]] = {}
        self._counter = itertools.count()
        self._round = 0  # the round of the job served last
        self._last_round: dict[str, int] = {}  # per session with jobs queued: the round of its last one
        self._per_key: dict[str, int] = {}  # per session: its jobs queued
        self._cv = threading.Condition()
        self._busy_s = 0.0
        self._recent: deque[tuple[float, str, float]] = deque()  # (finished at, session, seconds)
        self._closed = False
        self._bulk_running = 0
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str, priority: int, call: Callable[[], T], *, key: str = "") -> Future[T]:
        """Queue ``call`` for session ``key``; its future resolves with the result, or is cancelled."""
        future: Future[T] = Future()
        with self._cv:
            round_ = max(self._round, self._last_round.get(key, -1) + 1)
            self._last_round[key] = round_
            self._per_key[key] = self._per_key.get(key, 0) + 1
            entry = _Entry(priority, round_, next(self._counter), key, job_id, bulk_work.get(), call, future)
            self._queued[job_id] = entry
            self._cv.notify()
        return future

    def cancel(self, job_id: str) -> None:
        """Drop ``job_id`` if it has not started; an unknown or running job is left alone."""
        with self._cv:
            entry = self._queued.pop(job_id, None)
            if entry is None:
                return
            entry.cancelled = True
            self._dequeued(entry.key)
        entry.future.cancel()

    def _dequeued(self, key: str) -> None:
        """One job of ``key`` left the queue (called with the lock held): forget a session with none."""
        self._per_key[key] -= 1
        if not self._per_key[key]:
            del self._per_key[key], self._last_round[key]

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread (not counting cancelled ones)."""
        return len(self._queued)

    def stats(self, now: float | None = None) -> WorkerStats:
        """What ``/metrics`` shows of this worker (see :class:`WorkerStats`)."""
        now = time.monotonic() if now is None else now
        with self._cv:
            self._forget_before(now - SHARE_WINDOW_S)
            by_key: dict[str, float] = {}
            for _, key, seconds in self._recent:
                by_key[key] = by_key.get(key, 0.0) + seconds
            busy_s, queued = self._busy_s, len(self._queued)
        total = sum(by_key.values())
        return WorkerStats(queued, busy_s, max(by_key.values()) / total if total > 0 else 0.0)

    def _ran(self, key: str, seconds: float, now: float) -> None:
        """A job of ``key`` took ``seconds`` (called with the lock held)."""
        self._busy_s += seconds
        self._recent.append((now, key, seconds))
        self._forget_before(now - SHARE_WINDOW_S)
        self._used[key] = (self._usage(key, now) + seconds, now)
        if len(self._used) > MAX_USERS_KEPT:  # forget the sessions whose use has faded
            self._used = {k: v for k, v in self._used.items() if self._usage(k, now) > FADED_S}

    def _usage(self, key: str, now: float) -> float:
        """``key``'s job time, each second weighing half as much ``USAGE_HALF_LIFE_S`` later."""
        used, at = self._used.get(key, (0.0, now))
        return used * math.pow(0.5, max(0.0, now - at) / USAGE_HALF_LIFE_S)

    def _forget_before(self, cutoff: float) -> None:
        while self._recent and self._recent[0][0] < cutoff:
            self._recent.popleft()

    def close(self) -> None:
        """Stop the threads after the calls they are running; queued calls are cancelled."""
        with self._cv:
            self._closed = True
            queued = list(self._queued.values())
            self._queued.clear()
            self._cv.notify_all()
        for entry in queued:
            entry.future.cancel()

    def _next(self) -> _Entry[T] | None:
        """The best queued job, or ``None`` once closed (called with the lock held): the highest
        priority tier first; within it the job of the session that used the worker least of late
        (see the module's docstring), then by round and arrival. Bulk work comes last, and waits
        while it would take the last free thread."""
        while not (candidates := self._startable()) and not self._closed:
            self._cv.wait()
        if self._closed:
            return None
        now = time.monotonic()
        entry = min(candidates, key=lambda e: (e.bulk, e.priority, self._usage(e.key, now), e.round, e.sequence))
        self._bulk_running += entry.bulk
        del self._queued[entry.job_id]
        self._dequeued(entry.key)
        self._round = max(self._round, entry.round)
        return entry

    def _startable(self) -> list[_Entry[T]]:
        """The queued jobs a free thread may start (called with the lock held)."""
        if len(self._threads) > 1 and self._bulk_running >= len(self._threads) - 1:
            return [entry for entry in self._queued.values() if not entry.bulk]
        return list(self._queued.values())

    def _run(self) -> None:
        lower_priority(self.nice)
        while True:
            with self._cv:
                entry = self._next()
            if entry is None:
                return
            if not entry.future.set_running_or_notify_cancel():
                with self._cv:
                    self._finished_bulk(entry)
                continue
            started = time.monotonic()
            try:
                self._run_entry(entry)
            finally:
                finished = time.monotonic()
                with self._cv:
                    self._ran(entry.key, finished - started, finished)
                    self._finished_bulk(entry)

    def _finished_bulk(self, entry: _Entry[T]) -> None:
        """``entry`` no longer holds a thread (called with the lock held): a bulk job frees a lane."""
        if entry.bulk:
            self._bulk_running -= 1
            self._cv.notify_all()

    def _run_entry(self, entry: _Entry[T]) -> None:
        try:
            entry.future.set_result(entry.call())
        except EngineError as exc:
            entry.future.set_exception(exc)
        except Exception as exc:  # an engine crash must not kill the worker shared by all sessions
            log.exception("engine call %s crashed", entry.job_id)
            entry.future.set_exception(EngineError(f"engine crashed: {exc}", code="engine_error"))


class FairExecutor(Executor):
    """An executor whose calls are served by session in turn (:data:`current_session`), not one FIFO.

    It stands where a ``ThreadPoolExecutor`` would (``loop.run_in_executor``), over a
    :class:`ModelWorker` with one priority tier.
    """

    def __init__(self, name: str, *, threads: int) -> None:
        self._worker: ModelWorker[Any] = ModelWorker(name, threads=threads)
        self._calls = itertools.count()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        call = functools.partial(fn, *args, **kwargs)
        return self._worker.submit(f"call_{next(self._calls)}", 0, call, key=current_session.get())

    def stats(self) -> WorkerStats:
        return self._worker.stats()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Queued calls are cancelled whatever ``cancel_futures`` says; running ones finish unwaited."""
        self._worker.close()


def wait_future(future: Future[T]) -> asyncio.Future[T]:
    """An asyncio view of a worker future (eager, so nothing is left un-awaited if cancelled)."""
    return asyncio.wrap_future(future)
