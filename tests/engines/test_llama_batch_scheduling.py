"""BatchedDecoder's scheduling and failure paths, over fake llama.cpp bindings (no model needed).

The fake "model" answers each sequence with the tokens after the last one it was fed (1, 2, 3, ...)
until ``EOG``; it records every decode call, and can be told to fail.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from openrealtime.engines import llama_batch, llama_slots
from openrealtime.engines.llama_batch import BatchedDecoder
from openrealtime.engines.llama_slots import URGENT_TOKENS
from openrealtime.exceptions import EngineError
from tests.conftest import TIMEOUT_S

EOG = 9999


class FakeLlama:
    """The subset of ``llama_cpp.llama_cpp`` the decoder calls."""

    LLAMA_FLASH_ATTN_TYPE_DISABLED = 0

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, int, bool]]] = []  # per decode: (seq, token, wants logits)
        self.fail_next = False
        self.last: dict[int, int] = {}  # last token fed per batch index of the latest call
        self.removed: list[tuple[int, int]] = []
        self.permits: threading.Semaphore | None = None  # when set, each decode call takes one
        self.raise_next = False

    # model, context, memory
    def llama_model_get_vocab(self, model: Any) -> str:
        return "vocab"

    def llama_vocab_n_tokens(self, vocab: Any) -> int:
        return 10_000

    def llama_context_default_params(self) -> SimpleNamespace:
        return SimpleNamespace()

    def llama_init_from_model(self, model: Any, params: Any) -> str:
        return "ctx"

    def llama_get_memory(self, ctx: Any) -> str:
        return "memory"

    def llama_memory_seq_rm(self, memory: Any, seq: int, p0: int, p1: int) -> bool:
        self.removed.append((seq, p0))
        return True

    def llama_free(self, ctx: Any) -> None:
        pass

    # batches
    def llama_batch_init(self, n: int, embd: int, n_seq_max: int) -> SimpleNamespace:
        return SimpleNamespace(
            n_tokens=0, token=[0] * n, pos=[0] * n, n_seq_id=[0] * n, seq_id=[[0] for _ in range(n)], logits=[0] * n
        )

    def llama_batch_free(self, batch: Any) -> None:
        pass

    def llama_decode(self, ctx: Any, batch: Any) -> int:
        if self.permits is not None:
            assert self.permits.acquire(timeout=TIMEOUT_S), "the test released too few decode steps"
        if self.raise_next:
            self.raise_next = False
            raise RuntimeError("segfault-like crash in a binding")
        self.calls.append([(batch.seq_id[i][0], batch.token[i], bool(batch.logits[i])) for i in range(batch.n_tokens)])
        self.last = {i: batch.token[i] for i in range(batch.n_tokens)}
        if self.fail_next:
            self.fail_next = False
            return -3
        return 0

    # sampling
    def llama_sampler_chain_default_params(self) -> None:
        return None

    def llama_sampler_chain_init(self, params: Any) -> dict[str, Any]:
        return {"parts": []}

    def llama_sampler_chain_add(self, chain: dict[str, Any], part: Any) -> None:
        chain["parts"].append(part)

    def llama_sampler_init_greedy(self) -> str:
        return "greedy"

    def llama_sampler_init_penalties(self, *args: Any) -> str:
        return "penalties"

    def llama_sampler_init_grammar(self, vocab: Any, text: bytes, root: bytes) -> str | None:
        return None if b"broken" in text else "grammar"

    def llama_sampler_sample(self, chain: Any, ctx: Any, index: int) -> int:
        token = self.last[index]
        return EOG if token >= 1000 else token + 1  # prompts end below 1000; "1000" ends an answer

    def llama_vocab_is_eog(self, vocab: Any, token: int) -> bool:
        return token == EOG

    def llama_sampler_free(self, chain: Any) -> None:
        pass


def make(fake: FakeLlama, **kwargs: Any) -> BatchedDecoder:
    options: dict[str, Any] = {"context_tokens": 4096, "slots": 2, "n_threads": 1, "n_batch": 512, "seed": 1}
    options.update(kwargs)
    return BatchedDecoder(fake, "model", **options)


def test_a_completion_streams_its_tokens_and_ends_at_eog() -> None:
    fake = FakeLlama()
    decoder = make(fake)
    tokens = list(decoder.generate([5, 6, 7], max_tokens=2000, stop=threading.Event()))
    assert tokens[:3] == [8, 9, 10]
    assert tokens[-1] == 1000  # then EOG, not yielded
    assert decoder.stats.prompt_tokens == 3
    decoder.close()


def test_max_tokens_and_a_prompt_that_does_not_fit() -> None:
    decoder = make(FakeLlama(), context_tokens=16)
    assert list(decoder.generate([1, 2], max_tokens=3, stop=threading.Event())) == [3, 4, 5]
    with pytest.raises(EngineError) as info:
        list(decoder.generate(list(range(20)), max_tokens=3, stop=threading.Event()))
    assert info.value.code == "context_length_exceeded"
    decoder.close()


@pytest.mark.parametrize("failure", ["fail_next", "raise_next"], ids=["error code", "crash in the bindings"])
def test_a_failed_decode_fails_its_completions_and_the_next_one_works(failure: str) -> None:
    fake = FakeLlama()
    decoder = make(fake)
    setattr(fake, failure, True)  # llama_decode returns an error, or the binding raises
    with pytest.raises(EngineError) as info:
        list(decoder.generate([1, 2, 3], max_tokens=5, stop=threading.Event()))
    assert info.value.code == "generation_failed"
    assert list(decoder.generate([1, 2, 3], max_tokens=2, stop=threading.Event())) == [4, 5]
    decoder.close()


def stepped() -> tuple[FakeLlama, BatchedDecoder, threading.Semaphore]:
    """A decoder whose every decode call waits for the test to release a step."""
    fake = FakeLlama()
    fake.permits = threading.Semaphore(0)
    return fake, make(fake), fake.permits


def finish(fake: FakeLlama, decoder: BatchedDecoder) -> None:
    assert fake.permits is not None
    fake.permits.release(100_000)  # let the decode thread run free, then stop it
    decoder.close()


def test_a_long_prompt_is_prefilled_in_chunks_while_another_answer_streams() -> None:
    fake, decoder, steps = stepped()
    first = decoder.generate([1, 2], max_tokens=500, stop=threading.Event())
    steps.release(1)
    assert next(first) == 3  # streaming; the decode thread now waits for its next step
    second = decoder.generate(list(range(1, 201)), max_tokens=2, stop=threading.Event())
    steps.release(5)
    assert next(second) == 201
    # Step 2 was built before the second request came; then its 200 prompt tokens went in 64-token
    # chunks beside the first answer's one token a step.
    assert [sum(1 for seq, _, _ in call if seq == 1) for call in fake.calls] == [0, 0, 64, 64, 64, 8]
    assert all(any(seq == 0 for seq, _, _ in call) for call in fake.calls)
    first.close()
    second.close()
    finish(fake, decoder)


def test_answers_past_their_first_clause_wait_while_a_new_one_starts() -> None:
    fake, decoder, steps = stepped()
    old = decoder.generate([1], max_tokens=500, stop=threading.Event())
    steps.release(URGENT_TOKENS + 5)
    for _ in range(URGENT_TOKENS + 5):
        next(old)
    new = decoder.generate([500, 501], max_tokens=10, stop=threading.Event())
    steps.release(11)  # the step already built (old), then the new answer's prompt and 9 more
    assert len(list(new)) == 10
    after_old = fake.calls[URGENT_TOKENS + 6 :]
    assert len(after_old) == 10
    assert all(seq == 1 for call in after_old for seq, _, _ in call)  # the old answer sat those out
    steps.release(3)
    for _ in range(3):  # and then goes on
        next(old)
    assert all(seq == 0 for call in fake.calls[-3:] for seq, _, _ in call)
    old.close()
    finish(fake, decoder)


def test_a_freed_slot_goes_to_the_session_with_the_fewest_answers_running() -> None:
    fake, decoder, steps = stepped()  # two slots
    stop = threading.Event()
    first = decoder.generate([1], max_tokens=1, stop=stop, key="flooder")
    second = decoder.generate([1], max_tokens=500, stop=stop, key="flooder")
    third = decoder.generate([700], max_tokens=500, stop=stop, key="flooder")  # waits for a slot
    victim = decoder.generate([900], max_tokens=500, stop=stop, key="victim")  # waits, queued last
    steps.release(1)
    assert list(first) == [2]  # done: its slot frees
    steps.release(2)
    assert next(victim) == 901  # the victim took it, though the flooder's third answer came first
    assert not any(token == 700 for call in fake.calls for _, token, _ in call)
    for tokens in (second, third, victim):
        tokens.close()
    finish(fake, decoder)


def test_answers_past_their_first_clause_hold_back_while_another_engine_does_urgent_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While another engine decodes someone's final transcript or speaks a first clause, an answer
    already past its first clause pauses (first words first, across engines); new answers do not."""
    monkeypatch.setattr(llama_slots, "HOLD_S", TIMEOUT_S)  # held for as long as the test looks
    fake, decoder, steps = stepped()
    urgent = threading.Event()
    decoder.others_urgent = urgent.is_set
    old = decoder.generate([1], max_tokens=500, stop=threading.Event())
    steps.release(URGENT_TOKENS + 2)
    for _ in range(URGENT_TOKENS + 2):  # its first clause goes whatever others do
        next(old)
    urgent.set()
    steps.release(100)
    time.sleep(0.1)  # a step built before the flag went up may still run
    held_at = len(fake.calls)
    time.sleep(0.2)
    assert len(fake.calls) == held_at  # held
    new = decoder.generate([500], max_tokens=3, stop=threading.Event())
    assert len(list(new)) == 3  # a new answer's first words are urgent too: they go
    urgent.clear()
    next(old)  # and the old one goes on once the urgent work is done
    old.close()
    finish(fake, decoder)


def test_an_answer_waits_while_its_own_first_clause_is_voiced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once its first clause is being voiced (``hold_while``), an answer's next tokens are a second
    ahead of its listener: they wait while urgent work runs, even before ``URGENT_TOKENS``; another
    answer's first words do not."""
    monkeypatch.setattr(llama_slots, "HOLD_S", TIMEOUT_S)
    fake, decoder, steps = stepped()
    voicing = threading.Event()
    decoder.others_urgent = voicing.is_set  # the voice is the urgent work
    answer = decoder.generate([1], max_tokens=500, stop=threading.Event(), hold_while=voicing.is_set)
    steps.release(3)
    assert [next(answer) for _ in range(3)] == [2, 3, 4]  # its first clause, while nothing is voiced
    voicing.set()  # that clause goes to the voice
    steps.release(100)
    time.sleep(0.1)  # a step built before the flag went up may still run
    held_at = len(fake.calls)
    time.sleep(0.2)
    assert len(fake.calls) == held_at  # held, 4 tokens into its URGENT_TOKENS
    other = decoder.generate([500], max_tokens=3, stop=threading.Event())
    assert len(list(other)) == 3  # another answer's first words go
    voicing.clear()
    next(answer)  # and it goes on once its clause is voiced
    answer.close()
    finish(fake, decoder)


def test_a_bad_grammar_is_an_error_and_a_stopped_completion_ends() -> None:
    decoder = make(FakeLlama())
    with pytest.raises(EngineError) as info:
        list(decoder.generate([1], max_tokens=5, stop=threading.Event(), grammar=("broken", "root")))
    assert info.value.code == "invalid_tool_schema"
    stop = threading.Event()
    tokens = []
    for token in decoder.generate([1], max_tokens=900, stop=stop):
        tokens.append(token)
        stop.set()
    assert len(tokens) < 5
    decoder.close()


def test_after_close_requests_fail_clearly() -> None:
    decoder = make(FakeLlama())
    decoder.close()
    with pytest.raises(EngineError) as info:
        list(decoder.generate([1], max_tokens=5, stop=threading.Event()))
    assert info.value.code == "generation_failed"


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "the decoder did not get there"
        time.sleep(0.005)


def test_a_warming_evaluates_its_prompt_into_the_conversations_slot_and_samples_nothing() -> None:
    """The words heard so far go into the cache while the user speaks; the answer at the pause then
    evaluates only what came after them."""
    fake = FakeLlama()
    decoder = make(fake)
    decoder.warm(list(range(1, 21)), key="s1")
    wait_for(lambda: decoder.stats.prompt_tokens == 20 and decoder.stats.running == 0)
    assert all(not logits for call in fake.calls for _, _, logits in call)  # nothing sampled
    assert max(len(call) for call in fake.calls) == llama_batch.WARM_CHUNK_TOKENS  # in small steps
    answer = decoder.generate([*range(1, 21), 30, 31], max_tokens=2, stop=threading.Event(), key="s1")
    assert list(answer) == [32, 33]
    assert decoder.stats.prompt_tokens == 22  # the answer evaluated its last two tokens only
    assert decoder.stats.cached_tokens == 20
    decoder.warm(list(range(1, 21)), key="s1")  # already cached: nothing to do
    time.sleep(0.05)
    assert decoder.stats.prompt_tokens == 22
    decoder.close()


def test_a_warming_waits_for_urgent_work_and_gives_its_slot_to_the_answer() -> None:
    fake, decoder, steps = stepped()
    urgent = threading.Event()
    urgent.set()  # another engine is doing someone's first words
    decoder.others_urgent = urgent.is_set
    decoder.warm(list(range(1, 101)), key="s1")
    steps.release(1000)
    time.sleep(0.2)
    assert fake.calls == []  # held as long as the urgent work lasts
    urgent.clear()
    wait_for(lambda: len(fake.calls) >= 2)
    # The conversation's answer comes mid-warming: the warming stops, the answer keeps what it evaluated.
    answer = decoder.generate([*range(1, 101), 200], max_tokens=1, stop=threading.Event(), key="s1")
    assert list(answer) == [201]
    warmed = sum(len(call) for call in fake.calls[:-1])
    assert decoder.stats.prompt_tokens <= 101  # nothing evaluated twice
    assert decoder.stats.cached_tokens == min(warmed, 100)
    finish(fake, decoder)


def test_a_warming_never_takes_a_slot_a_request_needs_and_a_newer_one_replaces_it() -> None:
    fake, decoder, steps = stepped()  # two slots
    stop = threading.Event()
    decoder.warm(list(range(10, 110)), key="s1")
    steps.release(1)
    wait_for(lambda: decoder.stats.running == 1 and len(fake.calls) == 1)
    # Two other conversations' answers: one takes the idle slot, the other the warming's.
    first = decoder.generate([600], max_tokens=2, stop=stop, key="a")
    second = decoder.generate([700], max_tokens=2, stop=stop, key="b")
    steps.release(1000)
    assert list(first) == [601, 602]
    assert list(second) == [701, 702]
    assert sum(10 <= t < 110 for call in fake.calls for _, t, _ in call) < 100  # the warming gave up
    decoder.warm([1, 2, 3], key="s4")
    decoder.warm([1, 2, 3, 4], key="s4")  # replaces the one not started
    wait_for(lambda: decoder.stats.running == 0 and any(t == 4 for call in fake.calls for _, t, _ in call))
    assert sum(t == 1 for call in fake.calls for _, t, _ in call) <= 1  # the first never ran
    finish(fake, decoder)
