"""Run blocking engine calls off the event loop, singly or as streams, with cooperative stop.

A streaming engine call (LLM tokens, TTS chunks) runs in a worker thread that pushes each item to the
loop with ``call_soon_threadsafe``; when the consumer stops iterating (a cancelled response), the stop
event is set and the engine, which checks it between chunks, returns soon after.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_DONE = object()


async def iterate_in_thread(
    make_iterator: Callable[[threading.Event], Iterator[T]], executor: Executor
) -> AsyncIterator[T]:
    """Yield the items of ``make_iterator(stop)``, produced in ``executor``; errors are re-raised here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in make_iterator(stop):
                loop.call_soon_threadsafe(queue.put_nowait, item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which translates or re-raises it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    future = loop.run_in_executor(executor, produce)
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Do not wait for the thread: it stops at its next check, and its late items go nowhere.
        future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)


def lower_priority(nice: int) -> None:
    """Raise the calling thread's OS niceness to ``nice`` (Linux: each thread has its own; raising it
    needs no privilege, and threads it starts later inherit it). Elsewhere, a logged no-op."""
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError) as exc:
        log.warning("cannot lower the priority of thread %s: %s", threading.current_thread().name, exc)


def call_at_priority(nice: int, call: Callable[[], T]) -> T:
    """``call()`` in a new thread at niceness ``nice``, so that the threads it starts (an engine's own
    compute pool) run at that priority too; returns its result or raises its exception."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        lower_priority(nice)
        try:
            result.append(call())
        except BaseException as exc:  # handed to the caller as it is
            error.append(exc)

    thread = threading.Thread(target=run, name="engine-load")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
