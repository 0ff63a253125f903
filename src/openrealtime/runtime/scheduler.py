"""Worker threads per blocking model, shared by every session of the process.

Transcription requests are served by priority: the final decode of a turn (someone is waiting for
their transcript) before live-caption partials, and first come first served within a priority. A job
cancelled before it starts is never run; one already running finishes and its result is dropped by
the session, which knows it by id.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from openrealtime.exceptions import EngineError

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIORITY_FINAL = 0
PRIORITY_PARTIAL = 1


class ModelWorker(Generic[T]):
    """A thread that runs submitted calls one at a time, highest priority first."""

    def __init__(self, name: str, *, threads: int = 1) -> None:
        self._queue: list[tuple[int, int, str, Callable[[], T], Future[T]]] = []
        self._cancelled: set[str] = set()
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str, priority: int, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._cv:
            heapq.heappush(self._queue, (priority, next(self._counter), job_id, call, future))
            self._cv.notify()
        return future

    def cancel(self, job_id: str) -> None:
        with self._cv:
            self._cancelled.add(job_id)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                _, _, job_id, call, future = heapq.heappop(self._queue)
                if job_id in self._cancelled:
                    self._cancelled.discard(job_id)
                    future.cancel()
                    continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except EngineError as exc:
                future.set_exception(exc)
            except Exception as exc:  # an engine crash must not kill the worker shared by all sessions
                log.exception("engine call %s crashed", job_id)
                future.set_exception(EngineError(f"engine crashed: {exc}", code="engine_error"))
            finally:
                with self._cv:
                    self._cancelled.discard(job_id)


def wait_future(future: Future[T]) -> asyncio.Future[T]:
    """An asyncio view of a worker future (eager, so nothing is left un-awaited if cancelled)."""
    return asyncio.wrap_future(future)
