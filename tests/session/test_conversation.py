"""The conversation alone: item positions, truncation, and what the LLM is sent of each item kind."""

from __future__ import annotations

from typing import Any

import pytest

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.session.conversation import Conversation, Entry, SpokenClause, fit_context, heard_text


def message(item_id: str, role: str, *content: dict[str, Any]) -> Entry:
    return Entry(item={"id": item_id, "type": "message", "role": role, "content": list(content)})


def text(item_id: str, words: str, role: str = "user") -> Entry:
    return message(item_id, role, {"type": "input_text", "text": words})


def call(item_id: str, call_id: str) -> Entry:
    return Entry(item={"id": item_id, "type": "function_call", "call_id": call_id, "name": "weather", "arguments": ""})


def result(item_id: str, call_id: str, output: str) -> Entry:
    return Entry(item={"id": item_id, "type": "function_call_output", "call_id": call_id, "output": output})


def spoken(item_id: str = "a1") -> Entry:
    entry = message(item_id, "assistant", {"type": "output_audio", "transcript": "One two. Three four."})
    entry.audio_ms = 2000
    entry.clauses = [SpokenClause("One two.", 0, 1000), SpokenClause("Three four.", 1000, 2000)]
    return entry


def raises(exc: pytest.ExceptionInfo[ProtocolError]) -> tuple[str | None, str | None, str, str | None]:
    return exc.value.code, exc.value.param, str(exc.value), exc.value.event_id


def ids(conversation: Conversation) -> list[str]:
    return [entry.id for entry in conversation]


def test_items_go_last_first_or_after_any_item() -> None:
    conversation = Conversation()
    assert conversation.last_id is None
    assert conversation.added(text("u1", "one")) == se.ItemAdded(previous_item_id=None, item=text("u1", "one").item)
    assert conversation.add(text("u3", "three")) == "u1"
    assert conversation.add(text("u2", "two"), after="u1") == "u1"
    assert conversation.add(text("u0", "zero"), after="root") is None
    assert ids(conversation) == ["u0", "u1", "u2", "u3"]
    assert len(conversation) == 4
    assert [conversation.previous_id(i) for i in ("u0", "u2", "nope")] == [None, "u1", None]
    assert conversation.done(conversation.find("u2", "retrieving", "x", None)) == se.ItemDone(
        previous_item_id="u1", item=text("u2", "two").item
    )


def test_an_item_id_is_used_once_and_a_missing_predecessor_is_an_error() -> None:
    conversation = Conversation()
    conversation.add(text("u1", "one"))
    with pytest.raises(ProtocolError) as duplicate:
        conversation.add(text("u1", "again"), event_id="e1")
    with pytest.raises(ProtocolError) as missing:
        conversation.add(text("u2", "two"), after="nope", event_id="e2")
    assert raises(duplicate) == ("item_already_exists", "item.id", "Item with id 'u1' already exists.", "e1")
    assert raises(missing) == (
        "item_not_found",
        "previous_item_id",
        "Error adding item: the item with id 'nope' does not exist.",
        "e2",
    )
    assert ids(conversation) == ["u1"]


def test_delete_and_its_error() -> None:
    conversation = Conversation()
    conversation.add(text("u1", "one"))
    conversation.delete("u1")
    with pytest.raises(ProtocolError) as gone:
        conversation.delete("u1", event_id="d1")
    assert raises(gone) == (
        "item_delete_invalid_item_id",
        "item_id",
        "Error deleting item: the item with id 'u1' does not exist.",
        "d1",
    )
    assert len(conversation) == 0


def test_a_deleted_id_may_be_used_again_and_lookups_follow_every_change() -> None:
    conversation = Conversation()
    for item_id in ("u1", "u2", "u3"):
        conversation.add(text(item_id, item_id))
    conversation.delete("u2")
    assert conversation.get("u2") is None
    assert conversation.previous_id("u3") == "u1"
    conversation.add(text("u2", "again"), after="root")
    assert ids(conversation) == ["u2", "u1", "u3"]
    assert conversation.find("u2", "retrieving", "x", None).item["content"][0]["text"] == "again"
    assert [conversation.previous_id(i) for i in ids(conversation)] == [None, "u2", "u1"]


def test_a_burst_of_items_costs_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10: 2,000 ``conversation.item.create`` (an add and its ``done`` each) read each item's id
    a bounded number of times, not once per item before it (O(n^2) held the event loop)."""
    reads = 0
    plain = Entry.id

    def counted(entry: Entry) -> str:
        nonlocal reads
        reads += 1
        return plain.fget(entry)  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr(Entry, "id", property(counted))
    conversation = Conversation()
    items = 2000
    for k in range(items):
        entry = text(f"u{k}", "remember this")
        conversation.added(entry)
        conversation.done(entry)
    assert reads < 10 * items  # quadratic would be about items**2 / 2 = 2,000,000


def test_truncation_cuts_the_words_the_model_remembers_to_what_was_heard() -> None:
    conversation = Conversation()
    conversation.add(spoken())
    conversation.truncate("a1", 0, 1500, event_id=None)
    entry = conversation.find("a1", "retrieving", "x", None)
    assert entry.audio_ms == 1500
    assert entry.heard_text == "One two. Three"
    assert entry.item["content"] == [{"type": "output_audio", "transcript": "One two. Three"}]
    assert conversation.chat_messages() == [{"role": "assistant", "content": "One two. Three"}]


NOT_AUDIO = ("unsupported_content_type", "item_id", "Only model output audio messages can be truncated")


@pytest.mark.parametrize(
    ("entry", "content_index", "audio_end_ms", "error"),
    [
        (text("u1", "hi"), 0, 0, NOT_AUDIO),
        (spoken("u1"), 1, 0, NOT_AUDIO),
        (message("u1", "assistant", {"type": "output_text", "text": "hi"}), 0, 0, NOT_AUDIO),
        (message("u1", "assistant", {"type": "output_audio"}), 0, 0, NOT_AUDIO),  # no audio yet
        (
            spoken("u1"),
            0,
            2001,
            ("invalid_value", "audio_end_ms", "Audio content of 2000ms is already shorter than 2001ms"),
        ),
    ],
)
def test_truncation_errors_change_nothing(
    entry: Entry, content_index: int, audio_end_ms: int, error: tuple[str, str, str]
) -> None:
    conversation = Conversation()
    conversation.add(entry)
    before = conversation.chat_messages()
    with pytest.raises(ProtocolError) as exc:
        conversation.truncate("u1", content_index, audio_end_ms, event_id="t1")
    assert raises(exc) == (*error, "t1")
    assert conversation.chat_messages() == before


def test_truncating_a_missing_item() -> None:
    with pytest.raises(ProtocolError) as exc:
        Conversation().truncate("nope", 0, 0, event_id="t1")
    assert raises(exc) == (
        "item_truncate_invalid_item_id",
        "item_id",
        "Error truncating item: the item with id 'nope' does not exist.",
        "t1",
    )


def test_heard_text_keeps_a_share_of_a_clause_cut_mid_way() -> None:
    clauses = [SpokenClause("one two three four", 0, 1000), SpokenClause("five six", 1000, 1500)]
    assert heard_text(clauses, 0) == ""
    assert heard_text(clauses, 500) == "one two"
    assert heard_text(clauses, 1000) == "one two three four"
    assert heard_text(clauses, 1250) == "one two three four five"
    assert heard_text([SpokenClause("instant", 100, 100)], 100) == ""  # starts at the cut: not heard


def test_chat_messages_of_every_item_kind() -> None:
    conversation = Conversation()
    entries = [
        text("s1", "Be brief.", role="system"),
        message(
            "u1",
            "user",
            {"type": "input_text", "text": "Look:"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            {"type": "input_audio", "transcript": "what is it"},
            {"type": "input_audio", "transcript": None},
        ),
        message("u2", "user", {"type": "input_audio", "transcript": None}),  # nothing heard yet: left out
        message("a1", "assistant"),  # an assistant turn is kept even when empty
        Entry(item={"id": "a2", "type": "message", "content": [{"type": "output_text", "text": "A cat."}]}),
        call("c1", "call_1"),
        result("r1", "call_1", '{"temp": 21}'),
        Entry(item={"id": "x1", "type": "mcp_call"}),  # a kind the LLM is not sent
    ]
    for entry in entries:
        conversation.add(entry)
    assert conversation.chat_messages() == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",  # an image (only a session whose model sees images lets one in) as OpenAI's part
            "content": [
                {"type": "text", "text": "Look: what is it"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
            ],
        },
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "A cat."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    assert conversation.chat_messages([entries[5]]) == [conversation.chat_messages()[4]]


def test_a_snapshot_is_not_changed_by_later_truncation() -> None:
    conversation = Conversation()
    conversation.add(spoken())
    [before] = conversation.snapshot()
    conversation.truncate("a1", 0, 500, event_id=None)
    assert (before.audio_ms, before.heard_text) == (2000, None)


def test_fit_context_drops_the_oldest_items_and_never_starts_with_an_orphan_tool_result() -> None:
    system = [{"role": "system", "content": "x" * 40}]  # 22 tokens (3 characters a token, 8 a message)
    entries = [
        text("u1", "a" * 80),  # 35 tokens
        call("c1", "call_1"),
        result("r1", "call_1", "b" * 80),
        text("u2", "c" * 80),
    ]
    assert fit_context(system, entries, 1000) == entries
    kept = fit_context(system, entries, 60)
    assert [e.id for e in kept] == ["u2"]  # the call went, so its result went with it
    assert [e.id for e in fit_context(system, entries, 5)] == ["u2"]  # the last user message stays
