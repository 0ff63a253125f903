"""Concurrent completions on one llama.cpp context: one sequence (slot) each, one decode call per step.

A :class:`LlamaChatModel <openrealtime.engines.llama_chat.LlamaChatModel>` serves every session of a
process. With one plain context, two sessions answering at once took turns whole completions at a
time, and each switch threw away the other session's cached prompt, so every turn of a long
conversation re-evaluated it from the start (about 3 ms a token on this 2-core CPU). Here every
completion runs in its own sequence of one shared context, and one thread steps them all together:
each step is a single ``llama_decode`` holding the next prompt chunk of new completions and the last
sampled token of every running one (batching three sequences costs ~1.7x one, not 3x). A slot keeps
its tokens after its completion ends, and a new completion takes its conversation's slot (by cache
key) or the idle one sharing the longest prefix with its prompt, so a session's next turn evaluates
only what it added. While some completion is still on its first tokens, answers already past their
first clause wait, so a listener's first words are not slowed by another session's long answer.

A session may also *warm* its slot while its user is still speaking (:meth:`BatchedDecoder.warm`):
the conversation with the words heard so far, evaluated into the cache and nothing sampled, so that
when the turn ends the answer evaluates only the words that came after and the template's closing
tokens (a prompt token costs 4-8 ms on two cores: most of a short question's prefill). Warming is
never urgent: it waits while anyone's first words are due, and gives way to the conversation's
answer the moment that one comes.

Each completion gets its own sampler chain (grammar, repetition penalty, greedy or temperature), so
grammar-constrained tool arguments run alongside free text. Only the decoding thread touches the
context; callers read tokens from a queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openrealtime.exceptions import EngineError

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 4
URGENT_TOKENS = 24  # a completion's first tokens (its first spoken clause) go before others' later ones
PREFILL_CHUNK_TOKENS = 64  # prompt tokens per step while other completions stream (they wait for it)
WARM_CHUNK_TOKENS = 16  # a warming's tokens per step: an answer that comes meanwhile waits ~60 ms at most
KEEP_SHARE = 0.5  # a slot goes to a prompt that keeps at least this share of its cache (see _pick)
# While other engines do someone's urgent work (``others_urgent``: a final transcript, a first clause),
# answers past their first clause pause, for at most HOLD_S at a time and then go on for at least
# HOLD_S: they are seconds ahead of their speech, and keep well over its pace at half the steps.
HOLD_S = 0.25
HOLD_POLL_S = 0.005
PENALTY_LAST_N = 64
TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
_END = object()  # a completion's queue: no more tokens


@dataclass
class _Completion:
    prompt: list[int]
    key: str | None
    max_tokens: int
    sampler: Any
    stop: threading.Event
    out: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)
    slot: _Slot | None = None
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
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cache holds
    key: str | None = None  # the cache key of the conversation it last served
    used_at: int = 0
    busy: bool = False


class BatchedDecoder:
    """Runs completions of one llama.cpp model concurrently in one context.

    Args:
        bindings: ``llama_cpp.llama_cpp`` (the ctypes bindings).
        model: The loaded ``llama_model`` pointer (owned by the caller, who keeps it alive).
        context_tokens: The most tokens one completion may hold (prompt and output).
        slots: Concurrent completions; more wait for a free slot.
        n_threads: CPU threads of each decode call.
        n_batch: The most tokens of one decode call.
        seed: Seed of the temperature sampler.

    Raises:
        EngineError: If the context cannot be created.
    """

    def __init__(
        self,
        bindings: Any,
        model: Any,
        *,
        context_tokens: int,
        slots: int = DEFAULT_SLOTS,
        n_threads: int,
        n_batch: int,
        seed: int,
    ) -> None:
        self._l = bindings
        self.context_tokens = context_tokens
        self._vocab = bindings.llama_model_get_vocab(model)
        self._n_vocab = bindings.llama_vocab_n_tokens(self._vocab)
        self._seed = seed
        params = bindings.llama_context_default_params()
        params.n_ctx = context_tokens * slots
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = slots
        params.kv_unified = False  # each slot owns context_tokens cells: no slot can starve another
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        # As llama-cpp-python's own contexts: plain attention (the default "auto" picks flash
        # attention on the CPU, whose different rounding changes greedy answers of small models).
        params.flash_attn_type = bindings.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = bindings.llama_init_from_model(model, params)
        if not self._ctx:
            raise EngineError("llama.cpp could not create a batched context", code="model_load_failed")
        self._memory = bindings.llama_get_memory(self._ctx)
        self._n_batch = n_batch
        self._batch = bindings.llama_batch_init(n_batch, 0, 1)
        self._slots = [_Slot(seq) for seq in range(slots)]
        self._waiting: list[_Completion] = []
        self._running: list[_Completion] = []
        self._wake = threading.Condition()
        self._closed = False
        self._clock = 0
        self.stats = DecoderStats()
        # Set by the owner: whether other engines are doing someone's urgent work now.
        self.others_urgent: Callable[[], bool] | None = None
        self._held_since: float | None = None
        self._free_until = 0.0
        self._thread = threading.Thread(target=self._loop, name="llm-decode", daemon=True)
        self._thread.start()

    # --- callers' side -------------------------------------------------------------------------------

    def generate(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        stop: threading.Event,
        temperature: float = 0.0,
        repeat_penalty: float = 1.0,
        grammar: tuple[str, str] | None = None,
        key: str | None = None,
        hold_while: Callable[[], bool] | None = None,
    ) -> Tokens:
        """Start one completion now; iterate the result for its sampled tokens as they come. It ends
        at an end-of-generation token (not yielded), after ``max_tokens``, or soon after ``stop`` is
        set; closing it early frees the slot. ``grammar`` is (GBNF, root); ``key`` names the
        conversation, whose slot (and cache) the completion then reuses. While ``hold_while()`` is
        true its listener is busy with what it produced (its first clause being voiced), and it is
        not urgent: it waits, as answers past their first clause do, while others' urgent work runs.

        Raises:
            EngineError: If the prompt is empty or too long, or the decoder is shut down; while
                iterating, if llama.cpp fails.
        """
        if not prompt:
            raise EngineError("the prompt is empty", code="generation_failed")
        if len(prompt) >= self.context_tokens:
            raise EngineError(
                f"the prompt has {len(prompt)} tokens, more than the context of {self.context_tokens}",
                code="context_length_exceeded",
            )
        sampler = _sampler(self._l, self._vocab, self._n_vocab, self._seed, temperature, repeat_penalty, grammar)
        completion = _Completion(
            prompt=prompt,
            key=key,
            max_tokens=min(max_tokens, self.context_tokens - len(prompt)),
            sampler=sampler,
            stop=stop,
            hold_while=hold_while,
        )
        with self._wake:
            if self._closed:
                self._l.llama_sampler_free(sampler)
                raise EngineError("the LLM is shut down", code="generation_failed")
            self._waiting.append(completion)
            self._wake.notify()
        return Tokens(self, completion)

    def warm(self, prompt: list[int], *, key: str) -> None:
        """Evaluate ``prompt`` (an answer not asked for yet) into conversation ``key``'s slot when
        nothing urgent runs, sampling nothing; it replaces a warming of ``key`` not yet started.
        Best effort: a prompt that does not fit, or a decoder shut down, is ignored."""
        if not prompt or len(prompt) >= self.context_tokens:
            return
        completion = _Completion(prompt=prompt, key=key, max_tokens=0, sampler=None, stop=threading.Event(), warm=True)
        with self._wake:
            if self._closed:
                return
            self._waiting = [c for c in self._waiting if not (c.warm and c.key == key)]
            self._waiting.append(completion)
            self._wake.notify()

    def _abandon(self, completion: _Completion) -> None:
        with self._wake:
            completion.abandoned = True
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    # --- the decoding thread -------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._running:
                    self._wake.wait()
                if self._closed:
                    break
                self._retire_abandoned()
                self._admit()
                running = list(self._running)
            if running:
                batch = _urgent_first(running)
                if self._hold_back(batch):
                    continue
                try:
                    self._step(batch)
                except Exception as exc:  # the thread must survive: every reader waits on it
                    if not isinstance(exc, EngineError):
                        log.exception("llama.cpp decoding failed")
                        exc = EngineError(f"llama.cpp decoding failed: {exc}", code="generation_failed")
                    with self._wake:
                        for completion in running:
                            self._finish(completion, exc)
                        for slot in self._slots:  # what their caches hold is no longer known
                            slot.tokens = []
                            self._l.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
        with self._wake:
            for completion in self._waiting + self._running:
                completion.out.put(EngineError("the LLM is shut down", code="generation_failed"))
            self._waiting.clear()
            self._running.clear()
        self._l.llama_batch_free(self._batch)
        self._l.llama_free(self._ctx)

    def _hold_back(self, batch: list[_Completion]) -> bool:
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

    def _retire_abandoned(self) -> None:
        for completion in [c for c in self._running if c.abandoned or c.stop.is_set()]:
            self._finish(completion, None)
        self._waiting = [c for c in self._waiting if not c.abandoned]

    def _admit(self) -> None:
        """Give each waiting completion an idle slot (see :func:`_pick`) and drop what it does not share;
        warmings give way (:func:`_giving_way`), and to any request that finds no idle slot."""
        for warming in _giving_way(self._waiting, self._running):
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
            slot = _pick(idle, completion.prompt, completion.key)
            shared = _common_prefix(slot.tokens, completion.prompt)
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

    def _next_waiting(self) -> _Completion:
        """The waiting completion of the session (cache key) with the fewest running, first come
        first served among equals: one session's out-of-band answers do not take every slot that
        frees while another session waits (issue 10 defect 3). Warmings come after every request."""
        running = Counter(c.key for c in self._running)
        completion = min(self._waiting, key=lambda c: (c.warm, running[c.key]))  # warmings last
        self._waiting.remove(completion)
        return completion

    def _step(self, running: list[_Completion]) -> None:
        """One decode call over every running completion; samples where a step ends its input."""
        streaming = any(len(c.todo) == 1 for c in running)
        budget = self._n_batch
        batch = self._batch
        planned: list[tuple[_Completion, int, int]] = []  # (completion, tokens taken, index of its logits)
        n = 0
        for completion in running:
            room = min(budget - n, PREFILL_CHUNK_TOKENS if streaming and len(completion.todo) > 1 else budget)
            if completion.warm:
                room = min(room, WARM_CHUNK_TOKENS)
            take = min(len(completion.todo), room)
            if take <= 0:
                continue
            slot = completion.slot
            assert slot is not None
            for k in range(take):
                batch.token[n] = completion.todo[k]
                batch.pos[n] = len(slot.tokens) + k
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                batch.logits[n] = k == take - 1 and take == len(completion.todo) and not completion.warm
                n += 1
            planned.append((completion, take, n - 1))
        batch.n_tokens = n
        if n == 0:
            return
        self.stats.steps += 1
        code = self._l.llama_decode(self._ctx, batch)
        if code != 0:
            raise EngineError(f"llama.cpp decode failed (code {code})", code="generation_failed")
        with self._wake:
            for completion, take, index in planned:
                slot = completion.slot
                assert slot is not None
                slot.tokens.extend(completion.todo[:take])
                completion.todo = completion.todo[take:]
                if completion.todo:
                    continue  # more prompt to evaluate next step
                if completion.warm:
                    self._finish(completion, None)  # evaluated into its slot: that was all
                    continue
                token = int(self._l.llama_sampler_sample(completion.sampler, self._ctx, index))
                if self._l.llama_vocab_is_eog(self._vocab, token):
                    self._finish(completion, None)
                    continue
                completion.produced += 1
                completion.out.put(token)
                if completion.produced >= completion.max_tokens or completion.stop.is_set() or completion.abandoned:
                    self._finish(completion, None)
                else:
                    completion.todo = [token]

    def _finish(self, completion: _Completion, error: EngineError | None) -> None:
        if completion in self._running:
            self._running.remove(completion)
            self.stats.running = len(self._running)
        if completion.slot is not None:
            completion.slot.busy = False
            completion.slot = None
        if completion.sampler is not None:
            self._l.llama_sampler_free(completion.sampler)
            completion.sampler = None
        completion.out.put(error if error is not None else _END)


class Tokens:
    """The tokens of one running completion (an iterator); :meth:`close` gives up the rest."""

    def __init__(self, decoder: BatchedDecoder, completion: _Completion) -> None:
        self._decoder = decoder
        self._completion = completion
        self._done = False

    def __iter__(self) -> Tokens:
        return self

    def __next__(self) -> int:
        if self._done:
            raise StopIteration
        item = self._completion.out.get()
        if isinstance(item, int) and not self._completion.stop.is_set():
            return item
        self.close()  # the end, a failure, or tokens decoded ahead of a stop (not handed out)
        if isinstance(item, EngineError):
            raise item
        raise StopIteration

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._decoder._abandon(self._completion)

    def __del__(self) -> None:  # a reader that drops it without closing still frees the slot
        self.close()


def _sampler(
    lib: Any,
    vocab: Any,
    n_vocab: int,
    seed: int,
    temperature: float,
    repeat_penalty: float,
    grammar: tuple[str, str] | None,
) -> Any:
    """One completion's sampler chain: repetition penalty, grammar, then greedy or temperature."""
    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    if repeat_penalty != 1.0:
        lib.llama_sampler_chain_add(
            chain, lib.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, repeat_penalty, 0.0, 0.0)
        )
    if grammar is not None:
        text, root = grammar
        constrained = lib.llama_sampler_init_grammar(vocab, text.encode("utf-8"), root.encode("utf-8"))
        if not constrained:
            lib.llama_sampler_free(chain)
            raise EngineError("llama.cpp rejected the grammar", code="invalid_tool_schema")
        lib.llama_sampler_chain_add(chain, constrained)
    if temperature <= 0.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
    else:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(TOP_K))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(TOP_P, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(MIN_P, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
    return chain


def _giving_way(waiting: list[_Completion], running: list[_Completion]) -> list[_Completion]:
    """The running warmings whose conversation's next completion waits: they stop, and it takes the
    slot with what they evaluated (a warming is not started while its conversation's request runs)."""
    asked = {c.key for c in waiting if c.key is not None}
    return [c for c in running if c.warm and c.key in asked]


def _urgent_first(running: list[_Completion]) -> list[_Completion]:
    """The completions the next step decodes: the urgent ones (a listener waits for their first
    words) when there are any, else all. An answer already past its first clause is far ahead of its
    speech, so it pauses for a few steps rather than slow them."""
    urgent = [c for c in running if c.urgent()]
    return urgent or running


def _pick(idle: list[_Slot], prompt: list[int], key: str | None) -> _Slot:
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
    shared = [(_common_prefix(slot.tokens, prompt), slot) for slot in idle]
    fitting = [(n, slot) for n, slot in shared if n >= KEEP_SHARE * len(slot.tokens)]
    if fitting:
        return max(fitting, key=lambda pair: (pair[0], -pair[1].used_at))[1]
    return min(idle, key=lambda slot: slot.used_at)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
