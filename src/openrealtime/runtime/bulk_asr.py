"""A recogniser of its own for bulk work, at the lowest OS priority.

A session that sends audio faster than anyone speaks (:mod:`~openrealtime.runtime.input_pace`) is
doing bulk work: transcribing a file, say. Its decodes used to share the recogniser with live
speakers, kept off its last free thread; but the one thread they did take ran at the same OS
priority as a live speaker's final decode, and on two cores a victim of four such sessions waited
2.0-2.65 times as long for its answer as when idle (issue 10, flood B, goal 2x). Here they run on a
replica of the same model of their own, in one thread at niceness ``BULK_NICE``: the kernel gives
them only the CPU that live speakers, the LLM and the voices leave, and with nothing else to run
they go at full speed. The replica is loaded in that thread on the first bulk decode (its compute
threads, started there, inherit the niceness), so a server that never sees bulk work never pays
for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from openrealtime.contracts import Transcriber, Transcript
from openrealtime.runtime.scheduler import ModelWorker

BULK_NICE = 19  # the lowest priority Linux has: idle CPU only, while anything else wants it


class BulkAsr:
    """The bulk recogniser: its worker (one thread at ``BULK_NICE``) and its model, loaded once.

    Args:
        load: Loads the replica (called in the worker's thread, once).
    """

    def __init__(self, load: Callable[[], Transcriber]) -> None:
        self.worker: ModelWorker[Transcript] = ModelWorker("asr-bulk", threads=1, nice=BULK_NICE)
        self._load = load
        self._transcriber: Transcriber | None = None
        self._lock = threading.Lock()

    def transcriber(self) -> Transcriber:
        """The replica (loaded by the first caller: call it from the worker's thread)."""
        with self._lock:
            if self._transcriber is None:
                self._transcriber = self._load()
            return self._transcriber

    @property
    def loaded(self) -> bool:
        return self._transcriber is not None

    def close(self) -> None:
        self.worker.close()
