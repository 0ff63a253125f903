"""Worker threads per blocking model, shared by every session of the process.

Transcription requests are served by priority, then first come first served:

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

A worker's threads may run at a lower OS priority (``nice``): the ASR's do, so that when a voice
session's answer is being generated and spoken, the LLM and TTS threads get the cores first and live
captions of other speakers wait a little instead (with nothing else to run, niceness costs nothing).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from openrealtime.exceptions import EngineError
from openrealtime.runtime.threads import lower_priority

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIORITY_FINAL = 0
PRIORITY_FIRST_CAPTION = 1
PRIORITY_PARTIAL = 2


@dataclass(order=True)
class _Entry(Generic[T]):
    priority: int
    sequence: int
    job_id: str = field(compare=False)
    call: Callable[[], T] = field(compare=False)
    future: Future[T] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class ModelWorker(Generic[T]):
    """``threads`` threads that run submitted calls, highest priority first, at OS niceness ``nice``."""

    def __init__(self, name: str, *, threads: int = 1, nice: int = 0) -> None:
        self.nice = nice
        self._heap: list[_Entry[T]] = []
        self._queued: dict[str, _Entry[T]] = {}
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str, priority: int, call: Callable[[], T]) -> Future[T]:
        """Queue ``call``; its future resolves with the result, or is cancelled with the job."""
        future: Future[T] = Future()
        entry = _Entry(priority, next(self._counter), job_id, call, future)
        with self._cv:
            heapq.heappush(self._heap, entry)
            self._queued[job_id] = entry
            self._cv.notify()
        return future

    def cancel(self, job_id: str) -> None:
        """Drop ``job_id`` if it has not started; an unknown or running job is left alone."""
        with self._cv:
            entry = self._queued.pop(job_id, None)
            if entry is None:
                return
            entry.cancelled = True  # removed from the heap lazily, when it reaches the top
        entry.future.cancel()

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread (not counting cancelled ones)."""
        return len(self._queued)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _next(self) -> _Entry[T] | None:
        """The best queued job, or ``None`` once closed (called with the lock held)."""
        while True:
            while not self._heap and not self._closed:
                self._cv.wait()
            if self._closed:
                return None
            entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                del self._queued[entry.job_id]
                return entry

    def _run(self) -> None:
        lower_priority(self.nice)
        while True:
            with self._cv:
                entry = self._next()
            if entry is None:
                return
            if not entry.future.set_running_or_notify_cancel():
                continue
            try:
                entry.future.set_result(entry.call())
            except EngineError as exc:
                entry.future.set_exception(exc)
            except Exception as exc:  # an engine crash must not kill the worker shared by all sessions
                log.exception("engine call %s crashed", entry.job_id)
                entry.future.set_exception(EngineError(f"engine crashed: {exc}", code="engine_error"))


def wait_future(future: Future[T]) -> asyncio.Future[T]:
    """An asyncio view of a worker future (eager, so nothing is left un-awaited if cancelled)."""
    return asyncio.wrap_future(future)
