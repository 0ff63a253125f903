"""Run blocking engine calls off the event loop, singly or as streams, with cooperative stop.

A streaming engine call (LLM tokens, TTS chunks) runs in a worker thread that pushes each item to the
loop with ``call_soon_threadsafe``; when the consumer stops iterating (a cancelled response), the stop
event is set and the engine, which checks it between chunks, returns soon after.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


async def iterate_in_thread(
    make_iterator: Callable[[threading.Event], Iterator[T]], executor: ThreadPoolExecutor
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
