"""The default conversation of a realtime session: ordered items, and what the LLM sees of them.

Items are kept as their wire dicts (what ``conversation.item.retrieve`` returns) plus what the model
needs: the transcript of user audio (filled in when ASR finishes) and, for assistant audio, its length
and the spoken clauses with their start times, so a truncation can cut the text the model remembers to
the audio that was actually heard.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se

# The session never calls a tokenizer, so it estimates, with a margin measured on SmolLM2-135M-Instruct
# (English turns of 47-77 characters, its ChatML template): 4.28 characters a token of content and
# 5.5 template tokens a message. 3 characters a token and 8 tokens a message overestimate ordinary
# English by about 40 %; text that tokenizes worse (digits, other scripts) is cut exactly by the
# engine, which counts with the model's own tokenizer (``engines/llama_chat.py``).
CHARS_PER_TOKEN = 3
MESSAGE_TOKENS = 8
CUTS_PER_BUDGET = 4  # truncation cuts on boundaries a quarter of the budget apart
IMAGE_TOKENS = 1100  # an image in a vision model's context, estimated high (engines/chat_prompts.py)


@dataclass
class SpokenClause:
    text: str
    start_ms: int
    end_ms: int


@dataclass
class Entry:
    """One conversation item."""

    item: dict[str, Any]
    transcript_pending: bool = False  # user audio whose transcript is not known yet
    audio_ms: int = 0  # assistant audio produced for this item
    clauses: list[SpokenClause] = field(default_factory=list)
    heard_text: str | None = None  # set by truncation: what the model will remember saying

    @property
    def id(self) -> str:
        return str(self.item["id"])


def no_such_item(item_id: str, verb: str, code: str, event_id: str | None, *, param: str = "item_id") -> ProtocolError:
    """OpenAI's error for an event naming an item that does not exist (``verb``: "retrieving", ...)."""
    return ProtocolError(
        f"Error {verb} item: the item with id '{item_id}' does not exist.", code=code, param=param, event_id=event_id
    )


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` estimated from its length, rounded up (see ``CHARS_PER_TOKEN``)."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


class Conversation:
    """Items in order, with insertion after any item (``previous_item_id``) as OpenAI allows.

    Items are found by id in a dict and placed by a search from the newest end (the items an event names
    are nearly always the newest): a burst of 2,000 ``conversation.item.create``, each looked up whole
    from the oldest, cost O(n^2) and held the event loop (issue 10).
    """

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._by_id: dict[str, Entry] = {}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last_id(self) -> str | None:
        return self._entries[-1].id if self._entries else None

    def get(self, item_id: str) -> Entry | None:
        return self._by_id.get(item_id)

    def _position(self, item_id: str) -> int | None:
        """Where item ``item_id`` stands, searched from the newest end."""
        if item_id not in self._by_id:
            return None
        for index in range(len(self._entries) - 1, -1, -1):
            if self._entries[index].id == item_id:
                return index
        return None  # pragma: no cover - the dict and the list hold the same entries

    def find(self, item_id: str, verb: str, code: str, event_id: str | None) -> Entry:
        """Item ``item_id``, or OpenAI's error for an event about an item that does not exist."""
        entry = self.get(item_id)
        if entry is None:
            raise no_such_item(item_id, verb, code, event_id)
        return entry

    def previous_id(self, item_id: str) -> str | None:
        index = self._position(item_id)
        return self._entries[index - 1].id if index else None

    def add(self, entry: Entry, *, after: str | None = None, event_id: str | None = None) -> str | None:
        """Insert ``entry`` last, after item ``after``, or first for ``"root"``; returns the previous id."""
        if self.get(entry.id) is not None:
            raise ProtocolError(
                f"Item with id '{entry.id}' already exists.",
                code="item_already_exists",
                param="item.id",
                event_id=event_id,
            )
        if after is None:
            previous = self.last_id
            self._entries.append(entry)
        elif after == "root":
            previous = None
            self._entries.insert(0, entry)
        else:
            index = self._position(after)
            if index is None:
                raise no_such_item(after, "adding", "item_not_found", event_id, param="previous_item_id")
            previous = after
            self._entries.insert(index + 1, entry)
        self._by_id[entry.id] = entry
        return previous

    def added(self, entry: Entry, *, after: str | None = None, event_id: str | None = None) -> se.ItemAdded:
        """Insert ``entry`` (see :meth:`add`); returns its ``conversation.item.added``."""
        previous = self.add(entry, after=after, event_id=event_id)
        return se.ItemAdded(previous_item_id=previous, item=entry.item)

    def done(self, entry: Entry) -> se.ItemDone:
        """The ``conversation.item.done`` of ``entry`` as it stands now."""
        return se.ItemDone(previous_item_id=self.previous_id(entry.id), item=entry.item)

    def delete(self, item_id: str, *, event_id: str | None = None) -> None:
        self.find(item_id, "deleting", "item_delete_invalid_item_id", event_id)
        index = self._position(item_id)
        assert index is not None  # found above
        del self._entries[index]
        del self._by_id[item_id]

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int, *, event_id: str | None) -> None:
        """Cut an assistant audio item to ``audio_end_ms``: its audio, and the words the model keeps."""
        entry = self.find(item_id, "truncating", "item_truncate_invalid_item_id", event_id)
        content = entry.item.get("content") or []
        is_audio = (
            entry.item.get("role") == "assistant"
            and content_index < len(content)
            and content[content_index].get("type") == "output_audio"
            and entry.audio_ms > 0
        )
        if not is_audio:
            raise ProtocolError(
                "Only model output audio messages can be truncated",
                code="unsupported_content_type",
                param="item_id",
                event_id=event_id,
            )
        if audio_end_ms > entry.audio_ms:
            raise ProtocolError(
                f"Audio content of {entry.audio_ms}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
                event_id=event_id,
            )
        entry.audio_ms = audio_end_ms
        entry.heard_text = heard_text(entry.clauses, audio_end_ms)
        content[content_index]["transcript"] = entry.heard_text

    # --- what the LLM sees -------------------------------------------------------------------------

    def chat_messages(self, entries: list[Entry] | None = None) -> list[dict[str, Any]]:
        """The items as OpenAI chat messages (audio by its transcript, tool calls and results)."""
        messages: list[dict[str, Any]] = []
        for entry in self._entries if entries is None else entries:
            messages += entry_messages(entry)
        return messages

    def snapshot(self) -> list[Entry]:
        return [copy.copy(e) for e in self._entries]


def heard_text(clauses: list[SpokenClause], audio_end_ms: int) -> str:
    """The words of ``clauses`` spoken before ``audio_end_ms`` (a clause cut mid-way keeps a share of
    its words in proportion to the time heard)."""
    words: list[str] = []
    for clause in clauses:
        if clause.start_ms >= audio_end_ms:
            break
        clause_words = clause.text.split()
        if clause.end_ms <= audio_end_ms:
            words += clause_words
        else:
            share = (audio_end_ms - clause.start_ms) / max(1, clause.end_ms - clause.start_ms)
            words += clause_words[: int(len(clause_words) * share)]
    return " ".join(words)


def _text_of(content: list[dict[str, Any]]) -> str:
    parts = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(part.get("text") or "")
        elif kind in ("input_audio", "output_audio"):
            parts.append(part.get("transcript") or "")
    return " ".join(p for p in parts if p)


def entry_messages(entry: Entry) -> list[dict[str, Any]]:
    item = entry.item
    kind = item.get("type")
    if kind == "message":
        role = item.get("role", "user")
        content = item.get("content") or []
        text = entry.heard_text if entry.heard_text is not None else _text_of(content)
        images = [
            {"type": "image_url", "image_url": {"url": part["image_url"], "detail": part.get("detail", "auto")}}
            for part in content
            if part.get("type") == "input_image"
        ]
        if images:  # only a session whose model sees images lets them in (session/items.py)
            return [{"role": role, "content": [{"type": "text", "text": text}, *images] if text else images}]
        return [{"role": role, "content": text}] if text or role == "assistant" else []
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
        }
        return [{"role": "assistant", "content": None, "tool_calls": [call]}]
    if kind == "function_call_output":
        return [{"role": "tool", "tool_call_id": item.get("call_id"), "content": item.get("output", "")}]
    if kind == "mcp_call" and ("output" in item or "error" in item):  # a call the server made (session/mcp.py)
        function = {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}
        error = item.get("error")
        result = f"Error: {error.get('message', '')}" if isinstance(error, dict) else str(item.get("output", ""))
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": item["id"], "type": "function", "function": function}],
            },
            {"role": "tool", "tool_call_id": item["id"], "content": result},
        ]
    if kind == "mcp_approval_response" and item.get("approve") is False:
        reason = f" ({item['reason']})" if item.get("reason") else ""
        return [{"role": "user", "content": f"I declined that tool call{reason}; do not make it."}]
    return []


def fit_context(system: list[dict[str, Any]], entries: list[Entry], budget_tokens: int) -> list[Entry]:
    """``truncation: auto``: drop the oldest items, in one cut, until the prompt fits ``budget_tokens``.

    Linear in the number of items (each is costed once, with the chat template's tokens per message).
    The cut falls on a boundary counted from the conversation's start in steps of a quarter of the
    budget, so it moves only after another quarter's worth of turns: between two cuts the kept
    prefix, and so the engine's prompt cache, stay the same. It never starts with a tool result whose
    call was dropped, and never drops the last user message: one larger than the whole context reaches
    the engine, which fails the response saying so.
    """
    fixed = sum(_message_tokens(m) for m in system)
    costs = [sum(_message_tokens(m) for m in entry_messages(e)) for e in entries]
    excess = fixed + sum(costs) - budget_tokens
    if excess <= 0:
        return entries
    step = max(1, budget_tokens // CUTS_PER_BUDGET)
    target = -(-excess // step) * step
    start = dropped = 0
    while start < len(entries) and dropped < target:
        dropped += costs[start]
        start += 1
    return entries[_safe_start(entries, start) :]


def fit_retained(
    system: list[dict[str, Any]], entries: list[Entry], budget_tokens: int, ratio: float, limit_tokens: int | None
) -> list[Entry]:
    """``truncation: {"type": "retention_ratio"}``: when the conversation after the instructions is
    over its limit (``token_limits.post_instructions``, at most what the budget leaves), drop the
    oldest items in one cut down to ``ratio`` of the limit, and keep that cut until the kept part is
    over the limit again: the conversation is replayed item by item from its start (linear), so the
    cut is the one a server cutting as each item arrived would have made, and between two cuts the
    kept prefix, and so the prompt cache, stay the same. The same two guards as :func:`fit_context`.
    """
    room = budget_tokens - sum(_message_tokens(m) for m in system)
    limit = min(limit_tokens, room) if limit_tokens is not None else room
    costs = [sum(_message_tokens(m) for m in entry_messages(e)) for e in entries]
    start = kept = 0
    for cost in costs:
        kept += cost
        if kept > limit:
            while kept > ratio * limit and start < len(costs):
                kept -= costs[start]
                start += 1
    return entries[_safe_start(entries, start) :]


def _safe_start(entries: list[Entry], start: int) -> int:
    """``start``, moved so the kept items never lose the last user message (one larger than the
    whole context reaches the engine, which fails the response saying so) and never begin with a
    tool result whose call was dropped."""
    users = [i for i, e in enumerate(entries) if e.item.get("type") == "message" and e.item.get("role") == "user"]
    last = users[-1] if users else len(entries)
    start = min(start, last)
    while start < last and entries[start].item.get("type") == "function_call_output":
        start += 1
    return start


def _message_tokens(message: dict[str, Any]) -> int:
    content = message.get("content")
    images = 0
    if isinstance(content, list):  # text and images (a vision model's message)
        images = sum(1 for part in content if part.get("type") == "image_url")
        content = " ".join(str(part.get("text") or "") for part in content)
    text = str(content or "") + str(message.get("tool_calls") or "")
    return estimate_tokens(text) + MESSAGE_TOKENS + images * IMAGE_TOKENS
