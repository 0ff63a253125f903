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
first clause wait, so a listener's first words are not slowed by another session's long answer
(that scheduling is :mod:`~openrealtime.engines.llama_slots`, a mixin of the decoder).

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
import threading
from collections.abc import Callable
from typing import Any

from openrealtime.engines.llama_slots import Completion, DecoderStats, Scheduling, Slot, urgent_first
from openrealtime.exceptions import EngineError

log = logging.getLogger(__name__)

DEFAULT_SLOTS = 4
PREFILL_CHUNK_TOKENS = 64  # prompt tokens per step while other completions stream (they wait for it)
WARM_CHUNK_TOKENS = 16  # a warming's tokens per step: an answer that comes meanwhile waits ~60 ms at most
PENALTY_LAST_N = 64
TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
_END = object()  # a completion's queue: no more tokens


class BatchedDecoder(Scheduling):
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
        self._slots = [Slot(seq) for seq in range(slots)]
        self._waiting: list[Completion] = []
        self._running: list[Completion] = []
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
        completion = Completion(
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
        completion = Completion(prompt=prompt, key=key, max_tokens=0, sampler=None, stop=threading.Event(), warm=True)
        with self._wake:
            if self._closed:
                return
            self._waiting = [c for c in self._waiting if not (c.warm and c.key == key)]
            self._waiting.append(completion)
            self._wake.notify()

    def writing_first_words(self) -> bool:
        """Whether an answer (not a warming) waits to be admitted or is still urgent (its first
        clause not yet written and voiced: :meth:`Completion.urgent`)."""
        with self._wake:
            return any(not c.warm for c in self._waiting) or any(not c.warm and c.urgent() for c in self._running)

    def _abandon(self, completion: Completion) -> None:
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
                batch = urgent_first(running)
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

    def _step(self, running: list[Completion]) -> None:
        """One decode call over every running completion; samples where a step ends its input."""
        streaming = any(len(c.todo) == 1 for c in running)
        budget = self._n_batch
        batch = self._batch
        planned: list[tuple[Completion, int, int]] = []  # (completion, tokens taken, index of its logits)
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

    def _finish(self, completion: Completion, error: EngineError | None) -> None:
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

    def __init__(self, decoder: BatchedDecoder, completion: Completion) -> None:
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
