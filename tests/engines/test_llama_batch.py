"""The batched llama.cpp decoder behind LlamaChatModel, with the real SmolLM2 model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from openrealtime.contracts import ChatDone, ChatRequest, TextDelta
from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions
from tests.conftest import TIMEOUT_S
from tests.engines.test_llama_chat import real

SYSTEM = {"role": "system", "content": "You are a helpful voice assistant. Answer in one short sentence."}


def answer(model: LlamaChatModel, messages: list[dict[str, Any]], max_tokens: int = 24) -> tuple[str, ChatDone]:
    chunks = list(model.chat(ChatRequest(messages=messages, max_tokens=max_tokens), threading.Event()))
    done = chunks[-1]
    assert isinstance(done, ChatDone)
    return "".join(c.text for c in chunks if isinstance(c, TextDelta)), done


@pytest.fixture(scope="module")
def llm() -> LlamaChatModel:
    return LlamaChatModel(LlamaOptions(n_ctx=1024, parallel=3))


@real
def test_concurrent_completions_run_together_and_each_answers_its_own_question(llm: LlamaChatModel) -> None:
    questions = ["What is the capital of France?", "What is the capital of Japan?", "What is the capital of Italy?"]
    start = threading.Barrier(len(questions))

    def ask(question: str) -> str:
        start.wait()
        return answer(llm, [SYSTEM, {"role": "user", "content": question}])[0]

    with ThreadPoolExecutor(max_workers=3) as pool:
        texts = list(pool.map(ask, questions, timeout=TIMEOUT_S))
    assert llm.stats.peak_running == 3  # decoded in the same steps, not one after another
    for text, city in zip(texts, ["Paris", "Tokyo", "Rome"], strict=True):
        assert city in text


@real
def test_a_follow_up_turn_evaluates_only_what_it_added(llm: LlamaChatModel) -> None:
    conversation: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "What do bees make?"}]
    first, _ = answer(llm, conversation)
    conversation += [{"role": "assistant", "content": first}, {"role": "user", "content": "And what do cows give?"}]
    before = llm.stats.prompt_tokens
    _, done = answer(llm, conversation)
    evaluated = llm.stats.prompt_tokens - before
    assert evaluated < done.input_tokens / 2, (evaluated, done.input_tokens)


@real
def test_more_completions_than_slots_wait_and_an_abandoned_one_frees_its_slot() -> None:
    model = LlamaChatModel(LlamaOptions(n_ctx=512, parallel=1))
    stream = model.chat(
        ChatRequest(messages=[{"role": "user", "content": "Tell me a long story."}], max_tokens=200), threading.Event()
    )
    assert isinstance(next(stream), TextDelta)
    stream.close()  # the reader goes away mid-answer: its only slot must come free
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(answer, model, [{"role": "user", "content": f"Name a color number {i}."}], 8) for i in range(3)
        ]
        results = [f.result(timeout=TIMEOUT_S) for f in futures]
    assert all(done.finish_reason in ("stop", "length") for _, done in results)
    assert model.stats.peak_running == 1
    model.close()


def test_a_conversation_keeps_its_own_slot_and_a_new_one_takes_an_empty_slot() -> None:
    from openrealtime.engines.llama_slots import Slot, pick

    system = [1, 2, 3, 4, 5, 6]
    mine = Slot(0, tokens=[*system, 10, 11, 12], key="sess_a", used_at=1)
    empty = Slot(1)
    assert pick([mine, empty], [*system, 10, 11, 12, 13], "sess_a") is mine
    # Another session shares the system prompt with mine, but takes the empty slot instead.
    assert pick([mine, empty], [*system, 20, 21], "sess_b") is empty
    # With no empty slot, the least recently used one is given up.
    other = Slot(2, tokens=[*system, 30], key="sess_c", used_at=0)
    assert pick([mine, other], [*system, 20, 21], "sess_b") is other
    # Without a key, the longest shared prefix wins where it keeps most of a slot's cache.
    assert pick([mine, other], [*system, 10, 11, 12, 99], None) is mine


def test_realtime_requests_carry_the_session_as_their_cache_key() -> None:
    from tests.session.test_realtime import make, say

    session, driver = make()
    say(driver)
    driver.send({"type": "response.create"})
    assert driver.chat.requests[-1].cache_key == session.info.session_id


@real
def test_a_warmed_turn_evaluates_only_the_words_after_those_heard_and_answers_the_same(llm: LlamaChatModel) -> None:
    """While the user speaks, the conversation and the words heard so far go into the session's
    cache; the answer at the pause evaluates the rest and the template's closing only, and is the
    answer a cold prompt gives (greedy)."""
    heard = [SYSTEM, {"role": "user", "content": "Which planet is known as the"}]
    whole = [SYSTEM, {"role": "user", "content": "Which planet is known as the red planet?"}]
    cold = LlamaChatModel(LlamaOptions(n_ctx=1024, parallel=1))
    expected, _ = answer(cold, whole)
    cold.close()
    warmed_from = llm.stats.prompt_tokens
    llm.warm(ChatRequest(messages=heard, cache_key="warm-test"))
    deadline = time.monotonic() + TIMEOUT_S
    while llm.stats.running or llm.stats.prompt_tokens == warmed_from:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    before = llm.stats.prompt_tokens
    chunks = list(llm.chat(ChatRequest(messages=whole, max_tokens=24, cache_key="warm-test"), threading.Event()))
    evaluated = llm.stats.prompt_tokens - before
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == expected
    assert evaluated <= 4 + llm._closing_tokens, evaluated  # " red planet?" and the closing
