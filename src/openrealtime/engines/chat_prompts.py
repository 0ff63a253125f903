"""OpenAI chat messages as prompts that a small model's own chat template renders (pure).

This module owns the three prompts of a chat completion with tools: the conversation itself
(:func:`normalize_messages`: tool calls and results written out as text, one system turn), the
routing question that names every choice (:func:`router_messages`), and the argument-extraction
instruction (:func:`arguments_messages`); and the cut that makes a conversation fit a context
(:func:`fit_messages`). They are pure functions, testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, TypeVar

from openrealtime.contracts import ToolSpec

ANSWER = "answer"  # the router's choice meaning "reply in words"
EMPTY_OBJECT_SCHEMA: Mapping[str, Any] = {"type": "object"}
_SYSTEM_ROLES = ("system", "developer")

Rendered = TypeVar("Rendered", bound=Sized)


# What an image costs in a vision model's context, estimated high (OpenAI's high-detail tiles: 85 +
# 170 a tile, about 1,100 tokens for a 1024x1024 image; local vision models are in the same range).
IMAGE_TOKENS = 1100


def image_tokens(content: Any) -> int:
    """The estimated context tokens of the ``image_url`` parts of ``content``."""
    if not isinstance(content, list):
        return 0
    return IMAGE_TOKENS * sum(1 for part in content if isinstance(part, Mapping) and part.get("type") == "image_url")


def text_of(content: Any) -> str:
    """Flatten OpenAI content (a string, or a list of ``text``/``input_text``/``output_text`` parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if isinstance(part, Mapping):
            text = part.get("text", part.get("transcript"))
            if isinstance(text, str):
                parts.append(text)
        elif isinstance(part, str):
            parts.append(part)
    return "".join(parts)


def normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """OpenAI chat messages as plain ``{"role", "content"}`` strings that any chat template renders.

    Most small models' templates know neither tool calls nor tool results, so a call is left out
    (its assistant turn keeps only its words, if any) and its result is given as data the user
    supplied: appended to the user's turn, "(Result of get_weather, for your answer: ...)". Written
    out as "[called ...]" / "[result of ...]" turns, SmolLM2 read the brackets aloud. Consecutive
    system messages are merged into the first one, since many templates accept a single system turn.
    """
    call_names: dict[str, str] = {}
    out: list[dict[str, str]] = []
    for message in messages:
        role = str(message.get("role", "user"))
        text = text_of(message.get("content"))
        if role == "developer":
            role = "system"
        if role == "assistant":
            calls = message.get("tool_calls") or ()
            for call in calls:
                call_names[str(call.get("id", ""))] = str(call.get("function", {}).get("name", ""))
            if calls and not text.strip():
                continue  # the call itself is not shown: its result follows as data
        elif role == "tool":
            name = call_names.get(str(message.get("tool_call_id", "")), "the tool")
            data = f"(Result of {name}, for your answer: {text})"
            if out and out[-1]["role"] == "user":
                out[-1]["content"] += "\n\n" + data
                continue
            role, text = "user", data
        elif role != "system":
            role = "user"
        if role == "system" and out and out[-1]["role"] == "system":
            out[-1]["content"] += "\n\n" + text
            continue
        out.append({"role": role, "content": text})
    return out


def router_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[ToolSpec], *, allow_answer: bool
) -> list[dict[str, str]]:
    """The prompt of the routing step: the conversation, then a question that names every choice."""
    lines = [f"- {tool.name}: {tool.description or 'no description'}" for tool in tools]
    choices = [tool.name for tool in tools] + ([ANSWER] if allow_answer else [])
    question = "Which tool does my last message need? Tools:\n" + "\n".join(lines)
    if allow_answer:
        question += f"\nIf no tool fits, or I am just chatting, reply {ANSWER}."
    question += "\nReply with one word: " + ", ".join(choices) + "."
    return [*normalize_messages(messages), {"role": "user", "content": question}]


def describe_parameters(schema: Mapping[str, Any]) -> str:
    """A JSON Schema's top-level properties in words: ``room (string), on (boolean)``."""
    required = set(schema.get("required") or ())
    parts = []
    for name, sub in (schema.get("properties") or {}).items():
        sub = sub if isinstance(sub, Mapping) else {}
        detail = str(sub.get("type", "any"))
        if sub.get("enum"):
            detail += ": one of " + "/".join(str(value) for value in sub["enum"])
        if sub.get("description"):
            detail += f"; {sub['description']}"
        parts.append(f"{name} ({detail}{'' if name in required else ', optional'})")
    return ", ".join(parts) if parts else "none"


def arguments_messages(messages: Sequence[Mapping[str, Any]], tool: ToolSpec) -> list[dict[str, str]]:
    """The prompt of argument generation: an extraction instruction, then the conversation's turns.

    The instruction replaces the conversation's system prompt and lists the parameters in words
    rather than as raw JSON Schema, and the user's last message comes last: measured with
    SmolLM2-135M, this copies the values ("kitchen", "fahrenheit") where the conversation followed by
    a schema got them wrong in 3 of 5 requests. The grammar, not the prompt, guarantees the format.
    """
    instruction = (
        f"Extract the arguments of the function {tool.name}"
        + (f" ({tool.description.rstrip('.')})" if tool.description else "")
        + f" from the user's request: {describe_parameters(tool.parameters or EMPTY_OBJECT_SCHEMA)}."
        + " Reply with JSON."
    )
    turns = [message for message in normalize_messages(messages) if message["role"] != "system"]
    return [{"role": "system", "content": instruction}, *turns]


def fit_messages(
    messages: Sequence[Mapping[str, Any]],
    render: Callable[[list[Mapping[str, Any]]], Rendered],
    budget: int,
) -> tuple[list[Mapping[str, Any]], Rendered]:
    """Drop the oldest non-system messages, in one cut, until ``render`` of the rest is ``budget`` long.

    ``render`` turns messages into the prompt (its ``len`` is what must fit: tokens, or an estimate).
    System and developer messages are always kept, and so is the last user message with everything
    after it; the cut never leaves a tool result whose call was dropped. The cut is found by bisection
    (a few renders, not one per message). When even the shortest cut does not fit, that shortest one is
    returned: the caller sees that its length is over ``budget`` and says so.
    """
    whole = list(messages)
    rendered = render(whole)
    if len(rendered) <= budget:
        return whole, rendered
    rest = [i for i, m in enumerate(whole) if m.get("role") not in _SYSTEM_ROLES]
    users = [k for k, i in enumerate(rest) if whole[i].get("role") == "user"]
    latest = users[-1] if users else len(rest) - 1
    cuts = [k for k in range(1, latest + 1) if whole[rest[k]].get("role") != "tool"]

    def kept(k: int) -> list[Mapping[str, Any]]:
        first = rest[k]
        return [m for i, m in enumerate(whole) if i >= first or m.get("role") in _SYSTEM_ROLES]

    if not cuts:
        return whole, rendered
    shortest = kept(cuts[-1])
    best = (shortest, render(shortest))
    if len(best[1]) > budget:
        return best
    low, high = -1, len(cuts) - 1  # cuts[high] fits; the whole conversation (before cuts[0]) does not
    while high - low > 1:
        middle = (low + high) // 2
        candidate = kept(cuts[middle])
        candidate_rendered = render(candidate)
        if len(candidate_rendered) <= budget:
            high, best = middle, (candidate, candidate_rendered)
        else:
            low = middle
    return best
