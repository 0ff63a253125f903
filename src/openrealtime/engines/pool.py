"""Several instances of one engine behind the engine's own Protocol, for concurrent sessions.

One llama.cpp context or one piper voice serves one request at a time (each holds its own lock), so
two sessions answering at once wait for each other even when a core is idle. A pool hands each call
the first free instance; the model weights are memory-mapped, so each extra instance costs its
working memory (context, activations), not another copy of the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from openrealtime.audio.types import Samples
from openrealtime.engines.protocols import ChatChunk, ChatModel, ChatRequest, Synthesizer

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


class ChatModelPool:
    """A :class:`~openrealtime.engines.protocols.ChatModel` over several instances."""

    def __init__(self, models: Sequence[ChatModel]) -> None:
        self._pool = _Instances(models)
        self.context_tokens = self._pool.first.context_tokens

    def count_tokens(self, text: str) -> int:
        return self._pool.first.count_tokens(text)

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        yield from self._pool.stream(lambda model: iter(model.chat(request, stop)))


class SynthesizerPool:
    """A :class:`~openrealtime.engines.protocols.Synthesizer` over several instances."""

    def __init__(self, synthesizers: Sequence[Synthesizer]) -> None:
        self._pool = _Instances(synthesizers)
        self.sample_rate_hz = self._pool.first.sample_rate_hz

    def voices(self) -> Sequence[str]:
        return self._pool.first.voices()

    def synthesize(self, text: str, *, voice: str, stop: threading.Event) -> Iterator[Samples]:
        yield from self._pool.stream(lambda tts: iter(tts.synthesize(text, voice=voice, stop=stop)))
