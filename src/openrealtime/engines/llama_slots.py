"""Which of a :class:`~openrealtime.engines.llama_batch.BatchedDecoder`'s completions run, and in
which slot: the scheduling half of the decoder, as a mixin (through :class:`_Decoder`).

A completion waiting for a slot gets its conversation's own (by cache key), else an empty one, else
the one sharing the longest prefix with its prompt (:func:`pick`); sessions with fewer answers
running go first (:meth:`Scheduling._next_waiting`); a warming gives its slot up to any request. Each
step decodes the completions a listener waits for (:func:`urgent_first`: a completion's first
``URGENT_TOKENS``) when there are any, and answers past their first clause hold back, a bounded time,
while other engines do someone's urgent work (:meth:`Scheduling._hold_back`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from openrealtime.exceptions import EngineError

URGENT_TOKENS = 24  # a completion's first tokens (its first spoken clause) go before others' later ones
KEEP_SHARE = 0.5  # a slot goes to a prompt that keeps at least this share of its cache (see pick)
# While other engines do someone's urgent work (``others_urgent``: a final transcript, a first clause),
# answers past their first clause pause, for at most HOLD_S at a time and then go on for at least
# HOLD_S: they are seconds ahead of their speech, and keep well over its pace at half the steps.
HOLD_S = 0.25
HOLD_POLL_S = 0.005


@dataclass
class Completion:
    prompt: list[int]
    key: str | None
    max_tokens: int
    sampler: Any
    stop: threading.Event
    out: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)
    slot: Slot | None = None
    todo: list[int] = field(default_factory=list)  # tokens still to evaluate (prompt rest, or the last sample)
    produced: int = 0
    abandoned: bool = False  # the reader went away
    hold_while: Callable[[], bool] | None = None  # its listener is busy with what it produced (ChatRequest)
    warm: bool = False  # only evaluates its prompt into the cache (BatchedDecoder.warm): nothing sampled

    def urgent(self) -> bool:
        """Whether a listener waits for this completion's next tokens: it is on its first
        ``URGENT_TOKENS`` and its first clause is not being voiced already."""
        if self.warm:
            return False
        return self.produced < URGENT_TOKENS and not (self.hold_while is not None and self.hold_while())


@dataclass
class DecoderStats:
    """Counters of one decoder (``/metrics``): prompt tokens evaluated (a cached prefix costs none),
    prompt tokens served from a slot's cache, decode steps, and completions running now and at most."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    steps: int = 0
    running: int = 0
    peak_running: int = 0


@dataclass
class Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cache holds
    key: str | None = None  # the cache key of the conversation it last served
    used_at: int = 0
    busy: bool = False


class _Decoder(Protocol):
    """What of the decoder the scheduling uses (under its lock, in its decoding thread)."""

    _l: Any
    _memory: Any
    _slots: list[Slot]
    _waiting: list[Completion]
    _running: list[Completion]
    _clock: int
    _held_since: float | None
    _free_until: float
    stats: DecoderStats
    others_urgent: Callable[[], bool] | None

    def _finish(self, completion: Completion, error: EngineError | None) -> None: ...

    def _next_waiting(self) -> Completion: ...


class Scheduling:
    """Admission to slots and holding back, for :class:`~openrealtime.engines.llama_batch.BatchedDecoder`."""

    _held_since: float | None  # since when answers past their first clause have been held back
    _free_until: float  # until when they go on, held back or not

    def _hold_back(self: _Decoder, batch: list[Completion]) -> bool:
        """Whether to skip this step for others' urgent work (see ``HOLD_S``); sleeps a poll if so.
        Warmings alone wait as long as that work lasts: nobody waits for them."""
        if all(c.warm for c in batch) and self.others_urgent is not None and self.others_urgent():
            time.sleep(HOLD_POLL_S)
            return True
        now = time.monotonic()
        if (
            self.others_urgent is None
            or now < self._free_until
            or any(c.urgent() for c in batch)
            or not self.others_urgent()
        ):
            self._held_since = None
            return False
        if self._held_since is None:
            self._held_since = now
        elif now - self._held_since >= HOLD_S:
            self._held_since, self._free_until = None, now + HOLD_S
            return False
        time.sleep(HOLD_POLL_S)
        return True

    def _retire_abandoned(self: _Decoder) -> None:
        for completion in [c for c in self._running if c.abandoned or c.stop.is_set()]:
            self._finish(completion, None)
        self._waiting = [c for c in self._waiting if not c.abandoned]

    def _admit(self: _Decoder) -> None:
        """Give each waiting completion an idle slot (see :func:`pick`) and drop what it does not share;
        warmings give way (:func:`giving_way`), and to any request that finds no idle slot."""
        for warming in giving_way(self._waiting, self._running):
            self._finish(warming, None)  # its slot keeps what it evaluated
        busy = {c.key for c in self._running if not c.warm}
        self._waiting = [c for c in self._waiting if not (c.warm and c.key in busy)]
        while self._waiting:
            idle = [slot for slot in self._slots if not slot.busy]
            if not idle:
                warmings = [c for c in self._running if c.warm]
                if not warmings or all(c.warm for c in self._waiting):
                    return
                self._finish(warmings[0], None)  # a request goes before a warming
                continue
            completion = self._next_waiting()
            slot = pick(idle, completion.prompt, completion.key)
            shared = common_prefix(slot.tokens, completion.prompt)
            if completion.warm and shared == len(completion.prompt):
                self._finish(completion, None)  # already in the cache
                continue
            slot.key = completion.key
            keep = min(shared, len(completion.prompt) - 1)
            self._l.llama_memory_seq_rm(self._memory, slot.seq, keep, -1)
            slot.tokens = slot.tokens[:keep]
            slot.busy = True
            self._clock += 1
            slot.used_at = self._clock
            completion.slot, completion.todo = slot, completion.prompt[keep:]
            self.stats.prompt_tokens += len(completion.todo)
            self.stats.cached_tokens += keep
            self._running.append(completion)
            self.stats.running = len(self._running)
            self.stats.peak_running = max(self.stats.peak_running, len(self._running))

    def _next_waiting(self: _Decoder) -> Completion:
        """The waiting completion of the session (cache key) with the fewest running, first come
        first served among equals: one session's out-of-band answers do not take every slot that
        frees while another session waits (issue 10 defect 3). Warmings come after every request."""
        running = Counter(c.key for c in self._running)
        completion = min(self._waiting, key=lambda c: (c.warm, running[c.key]))  # warmings last
        self._waiting.remove(completion)
        return completion


def giving_way(waiting: list[Completion], running: list[Completion]) -> list[Completion]:
    """The running warmings whose conversation's next completion waits: they stop, and it takes the
    slot with what they evaluated (a warming is not started while its conversation's request runs)."""
    asked = {c.key for c in waiting if c.key is not None}
    return [c for c in running if c.warm and c.key in asked]


def urgent_first(running: list[Completion]) -> list[Completion]:
    """The completions the next step decodes: the urgent ones (a listener waits for their first
    words) when there are any, else all. An answer already past its first clause is far ahead of its
    speech, so it pauses for a few steps rather than slow them."""
    urgent = [c for c in running if c.urgent()]
    return urgent or running


def pick(idle: list[Slot], prompt: list[int], key: str | None) -> Slot:
    """The slot for ``prompt``: its conversation's own (by ``key``), else an empty one, else among
    those it would keep at least ``KEEP_SHARE`` of the one sharing the longest prefix, else the least
    recently used. So a new session does not take another's slot for the system prompt they share,
    and each session's history stays cached while slots last."""
    if key is not None:
        for slot in idle:
            if slot.key == key:
                return slot
        for slot in idle:
            if not slot.tokens and slot.key is None:
                return slot
    shared = [(common_prefix(slot.tokens, prompt), slot) for slot in idle]
    fitting = [(n, slot) for n, slot in shared if n >= KEEP_SHARE * len(slot.tokens)]
    if fitting:
        return max(fitting, key=lambda pair: (pair[0], -pair[1].used_at))[1]
    return min(idle, key=lambda slot: slot.used_at)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
