"""Several instances of a TTS engine behind its own Protocol, for concurrent sessions.

One piper voice speaks one piece of a sentence at a time (it holds its own lock), so two sessions
speaking at once take turns piece by piece even when a core is idle. A pool hands each call the first free
instance. (The LLM needs no pool: one llama.cpp model decodes concurrent answers together, see
:mod:`~openrealtime.engines.llama_batch`.)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from openrealtime.audio.types import Samples
from openrealtime.contracts import Synthesizer

T = TypeVar("T")
U = TypeVar("U")


class _Instances(Generic[T]):
    def __init__(self, instances: Sequence[T]) -> None:
        if not instances:
            raise ValueError("a pool needs at least one instance")
        self.first = instances[0]
        self._free: queue.Queue[T] = queue.Queue()
        for instance in instances:
            self._free.put(instance)

    def stream(self, call: Callable[[T], Iterator[U]]) -> Iterator[U]:
        instance = self._free.get()  # blocks this worker thread only, never the event loop
        try:
            yield from call(instance)
        finally:
            self._free.put(instance)


class SynthesizerPool:
    """A :class:`~openrealtime.contracts.Synthesizer` over several instances."""

    def __init__(self, synthesizers: Sequence[Synthesizer]) -> None:
        self._pool = _Instances(synthesizers)
        self.sample_rate_hz = self._pool.first.sample_rate_hz

    def voices(self) -> Sequence[str]:
        return self._pool.first.voices()

    def speaks(self, language: str) -> bool:
        return self._pool.first.speaks(language)

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        yield from self._pool.stream(lambda tts: iter(tts.synthesize(text, voice=voice, stop=stop, speed=speed)))
