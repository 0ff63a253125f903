"""A conversation longer than the context never fails for length (issue 10, defect 1).

The session estimates with a measured margin and cuts in steps (``fit_context``); the engine cuts
exactly with the model's own tokenizer (``fit_messages`` under ``LlamaChatModel``), or from a
conservative estimate for a remote endpoint; only one message larger than the whole context fails,
saying so. Fast tests run over fake renderers; one ``real`` test holds a 150-pair conversation with
SmolLM2 at its default context.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest

from openrealtime.contracts import ChatDone, ChatRequest, TextDelta
from openrealtime.engines.chat_prompts import fit_messages, normalize_messages
from openrealtime.engines.llama_chat import LlamaChatModel
from openrealtime.engines.openai_chat import OpenAIChatOptions, OpenAICompatibleChatModel
from openrealtime.exceptions import EngineError
from openrealtime.session.conversation import Entry, _message_tokens, entry_messages, fit_context, fit_retained

SYSTEM = {"role": "system", "content": "Be brief."}
# Ordinary English turns of 47-77 characters, as in the issue.
USER = "What is the weather going to be like in Paris tomorrow morning?"
ASSISTANT = "Tomorrow in Paris looks mild and cloudy, with a little rain after noon."


def words(messages: Sequence[Mapping[str, Any]]) -> list[int]:
    """A fake tokenizer and template: one token a word, four a message."""
    return [0] * sum(len(str(m.get("content") or "").split()) + 4 for m in messages)


def pairs(count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(count):
        out += [{"role": "user", "content": f"{i} {USER}"}, {"role": "assistant", "content": ASSISTANT}]
    return out


def call(call_id: str) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": "{}"}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


# --- the engine's cut (pure) -----------------------------------------------------------------------


def test_a_conversation_that_fits_is_sent_whole_after_one_render() -> None:
    renders: list[int] = []

    def render(messages: list[Mapping[str, Any]]) -> list[int]:
        renders.append(len(messages))
        return words(messages)

    messages = [SYSTEM, *pairs(3)]
    assert fit_messages(messages, render, 1000) == (messages, words(messages))
    assert renders == [7]


def test_the_oldest_messages_go_in_one_cut_and_the_system_stays() -> None:
    messages = [SYSTEM, *pairs(200)]
    renders = 0

    def render(kept: list[Mapping[str, Any]]) -> list[int]:
        nonlocal renders
        renders += 1
        return words(kept)

    kept, prompt = fit_messages(messages, render, 500)
    assert kept[0] == SYSTEM
    assert kept[1:] == messages[len(messages) - len(kept) + 1 :]  # one slice off the front
    assert len(prompt) <= 500
    assert len(words([SYSTEM, *messages[len(messages) - len(kept) :]])) > 500  # the smallest cut
    assert renders <= 12  # bisection: 400 messages in about log2(400) renders


def test_the_cut_never_leaves_a_tool_result_without_its_call() -> None:
    messages = [
        SYSTEM,
        {"role": "user", "content": "one two three four five six"},
        call("c1"),
        {"role": "tool", "tool_call_id": "c1", "content": "x " * 30},
        {"role": "user", "content": "seven"},
    ]
    kept, _ = fit_messages(messages, words, 30)
    assert [m["role"] for m in kept] == ["system", "user"]
    # A result just after the cut point goes too, with the call it answered.
    kept, _ = fit_messages(messages, words, len(words(messages)) - 11)  # the first user message is 10
    assert [m["role"] for m in kept] == ["system", "user"]


def test_the_last_user_message_and_what_follows_it_are_never_cut() -> None:
    messages = [SYSTEM, *pairs(2), {"role": "user", "content": "ask"}, call("c1"), {"role": "tool", "content": "ok"}]
    kept, prompt = fit_messages(messages, words, 1)
    assert kept == [SYSTEM, *messages[-3:]]
    assert len(prompt) > 1  # the caller sees it does not fit
    # Nothing to cut: returned whole.
    assert fit_messages([SYSTEM], words, 1) == ([SYSTEM], words([SYSTEM]))
    assert fit_messages([SYSTEM, {"role": "user", "content": "a b"}], words, 1)[0][-1]["content"] == "a b"


def test_without_a_user_message_the_last_message_is_kept() -> None:
    messages = [SYSTEM, {"role": "assistant", "content": "a " * 20}, {"role": "assistant", "content": "b"}]
    kept, _ = fit_messages(messages, words, 10)
    assert kept == [SYSTEM, messages[-1]]


def fake_llama(context_tokens: int) -> LlamaChatModel:
    """The model's fitting step over a fake tokenizer and template (``_render``): no weights loaded."""
    model = LlamaChatModel.__new__(LlamaChatModel)
    model.context_tokens = context_tokens
    model._render = words  # type: ignore[method-assign]
    return model


def test_the_engine_cuts_with_its_tokenizer_and_keeps_room_for_the_answer() -> None:
    model = fake_llama(400)
    messages = [SYSTEM, *pairs(100), {"role": "user", "content": "And tomorrow?"}]
    prompt = model._fitted(messages, normalize_messages, 64)
    assert 400 - 64 - 20 < len(prompt) <= 400 - 64
    # A huge max_tokens keeps at most a quarter of the context: the conversation still gets 300.
    assert 300 - 20 < len(model._fitted(messages, normalize_messages, 10_000)) <= 300


def test_only_a_single_message_larger_than_the_context_fails_and_says_so() -> None:
    model = fake_llama(400)
    messages = [SYSTEM, *pairs(3), {"role": "user", "content": "word " * 500}]
    with pytest.raises(EngineError) as info:
        model._fitted(messages, normalize_messages, 64)
    assert info.value.code == "context_length_exceeded"
    assert info.value.message == (
        "The last message is too long for the model's context: with the instructions it takes 510 tokens, "
        "and the context holds 400, 64 of them kept for the answer. Send a shorter message."
    )


def test_a_remote_endpoint_gets_a_conversation_that_fits_by_estimate() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, text='data: {"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n')

    model = OpenAICompatibleChatModel(
        OpenAIChatOptions(base_url="http://x/v1", model="m", context_tokens=1000),
        transport=httpx.MockTransport(handler),
    )
    messages = [SYSTEM, *pairs(100)]
    chunks = list(model.chat(ChatRequest(messages=messages, max_tokens=100), threading.Event()))
    assert chunks[-1] == ChatDone("stop", 0, 0)
    sent = bodies[0]["messages"]
    assert sent[0] == SYSTEM
    assert sent[1:] == messages[len(messages) - len(sent) + 1 :]
    characters = sum(len(m["content"]) for m in sent)
    assert 900 * 2 < characters + 8 * 3 * len(sent) <= 900 * 3  # 3 characters and 8 tokens a message
    small = [SYSTEM, *pairs(2)]
    assert model.request_body(ChatRequest(messages=small))["messages"] == small
    model.close()


# --- the session's estimate ------------------------------------------------------------------------


def text(item_id: str, role: str, content: str) -> Entry:
    kind = "input_text" if role == "user" else "output_text"
    return Entry(item={"id": item_id, "type": "message", "role": role, "content": [{"type": kind, "text": content}]})


def conversation(count: int) -> list[Entry]:
    entries: list[Entry] = []
    for i in range(count):
        entries += [text(f"u{i}", "user", f"{i} {USER}"), text(f"a{i}", "assistant", ASSISTANT)]
    return entries


def test_the_session_cuts_in_steps_so_the_kept_prefix_and_its_cache_last_several_turns() -> None:
    system = [SYSTEM]
    firsts = [fit_context(system, conversation(n), 1792)[0].id for n in range(20, 150)]
    assert firsts[0] == "u0"
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert 0 < changes <= (150 - 20) // 5  # it moves every 7 or 8 pairs, not every turn


def test_the_session_estimate_keeps_a_margin_on_english_turns() -> None:
    # Measured with SmolLM2-135M-Instruct's tokenizer and template: a pair of these turns is 44.6
    # tokens (31 of content, 5.5 a message); the estimate counts 62.
    entries = conversation(150)
    kept = fit_context([SYSTEM], entries, 1792)
    assert len(kept) // 2 * 44.6 < 1792 * 0.75  # what the model sees, with the margin
    assert len(kept) // 2 * 62 <= 1792


def tokens(entries: list[Entry]) -> int:
    return sum(_message_tokens(m) for e in entries for m in entry_messages(e))


@pytest.mark.parametrize(("ratio", "limit"), [(0.8, None), (0.5, 600), (0.0, 600)])
def test_retention_ratio_cuts_down_to_the_ratio_in_one_cut_and_keeps_it(ratio: float, limit: int | None) -> None:
    """``truncation: retention_ratio``: nothing is cut under the limit; over it, the oldest items go
    down to ``ratio`` of it, and that cut stays until the kept part is over the limit again."""
    system = [SYSTEM]
    budget = 1792
    room = budget - _message_tokens(SYSTEM)
    cap = min(limit, room) if limit is not None else room
    kept = [fit_retained(system, conversation(n), budget, ratio, limit) for n in range(1, 150)]
    for n, entries in enumerate(kept, 1):
        assert entries[-1].id == f"a{n - 1}"  # the newest items always stay
        assert tokens(entries) <= cap
        if tokens(conversation(n)) <= cap:
            assert len(entries) == 2 * n  # under the limit: nothing cut
    firsts = [entries[0].id for entries in kept]
    cuts = [i for i, (a, b) in enumerate(itertools.pairwise(firsts), 2) if a != b]
    assert cuts  # 150 pairs are over any of these limits
    for n in cuts:  # right after a cut, what is kept is within the ratio (plus the pair just added)
        assert tokens(kept[n - 1][:-2]) <= max(ratio * cap, 0) + 1
    if ratio >= 0.5:
        assert len(cuts) <= len(kept) // 5  # one cut lasts several turns: the prompt cache stays warm


def test_retention_ratio_keeps_the_last_user_message_and_no_orphan_tool_result() -> None:
    entries = [*conversation(2), text("big", "user", "word " * 5000)]
    assert [e.id for e in fit_retained([SYSTEM], entries, 500, 0.8, None)] == ["big"]
    call_entry = Entry(item={"id": "c", "type": "function_call", "call_id": "x", "name": "f", "arguments": "{}"})
    result = Entry(item={"id": "r", "type": "function_call_output", "call_id": "x", "output": "ok " * 200})
    entries = [*conversation(3), call_entry, result, text("last", "user", "and now?")]
    kept = fit_retained([SYSTEM], entries, 300, 0.0, None)
    assert kept[0].item["type"] != "function_call_output"
    assert kept[-1].id == "last"


def test_the_session_never_drops_the_last_user_message() -> None:
    entries = [*conversation(2), text("big", "user", "word " * 5000)]
    assert [e.id for e in fit_context([SYSTEM], entries, 500)] == ["big"]
    assistant_only = [text("a", "assistant", "word " * 500)]
    assert fit_context([SYSTEM], assistant_only, 50) == []


# --- SmolLM2 ---------------------------------------------------------------------------------------


@pytest.mark.real
@pytest.mark.parametrize(
    "truncation",
    ["auto", {"type": "retention_ratio", "retention_ratio": 0.7, "token_limits": {"post_instructions": 1200}}],
    ids=["auto", "retention_ratio"],
)
def test_a_150_pair_conversation_with_smollm2_is_answered_at_every_point(truncation: Any) -> None:
    """Through the realtime session with the bundled SmolLM2 at its default context."""
    from openrealtime.engines.fake import EnergyVad
    from openrealtime.session.ids import Ids
    from openrealtime.session.realtime import RealtimeInfo, RealtimeSession
    from openrealtime.session.transcription import SessionInfo
    from tests.session.driver import RealtimeDriver

    llm = LlamaChatModel()
    try:
        base = SessionInfo(session_id="sess_long", created_at_s=0, accepts_model=lambda m: True)
        info = RealtimeInfo(
            base=base, model="gpt-realtime", context_tokens=llm.context_tokens, instructions="Be brief."
        )
        session = RealtimeSession(info, vad=EnergyVad(), ids=Ids(deterministic=True))
        driver = RealtimeDriver(session, chat=llm)
        driver.pump()
        update = {"type": "realtime", "output_modalities": ["text"], "truncation": truncation}
        driver.send({"type": "session.update", "session": update})
        answered: list[int] = []
        for turn in range(1, 151):
            user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"{turn} {USER}"}]}
            driver.send({"type": "conversation.item.create", "item": user})
            if turn in (1, 45, 60, 61, 100, 150):
                events = driver.send({"type": "response.create", "response": {"max_output_tokens": 4}})
                done = next(e for e in events if e["type"] == "response.done")
                assert done["response"]["status"] in ("completed", "incomplete"), done
                answered.append(turn)
            else:
                reply = [{"type": "output_text", "text": ASSISTANT}]
                driver.send(
                    {
                        "type": "conversation.item.create",
                        "item": {"type": "message", "role": "assistant", "content": reply},
                    }
                )
        assert answered == [1, 45, 60, 61, 100, 150]
        # The engine alone, given the whole 150 pairs (as with truncation disabled), cuts and answers.
        request = ChatRequest(messages=[SYSTEM, *pairs(150)], max_tokens=4)
        chunks = list(llm.chat(request, threading.Event()))
        assert any(isinstance(c, TextDelta) for c in chunks)
        last = chunks[-1]
        assert isinstance(last, ChatDone)
        assert last.input_tokens <= llm.context_tokens - 4
    finally:
        llm.close()
