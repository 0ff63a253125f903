"""What one session may hold or ask for (issue 10): the conversation's size, responses in flight."""

from __future__ import annotations

import json

import pytest

from openrealtime.session import realtime as realtime_module
from tests.session.test_realtime import make, say


def full_error(driver_events: list[dict]) -> dict:
    [error] = driver_events
    assert error["type"] == "error"
    return error["error"]


def test_a_conversation_takes_at_most_max_items_then_an_error_and_room_again_after_a_delete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(realtime_module, "MAX_CONVERSATION_ITEMS", 3)
    session, driver = make()
    for n in range(3):
        assert [e["type"] for e in say(driver, f"item {n}")] == ["conversation.item.added", "conversation.item.done"]
    error = full_error(say(driver, "one too many"))
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "conversation_full"
    assert error["param"] == "item"
    assert len(session.conversation) == 3
    first = next(iter(session.conversation)).id
    driver.send({"type": "conversation.item.delete", "item_id": first})
    assert [e["type"] for e in say(driver, "room again")] == ["conversation.item.added", "conversation.item.done"]


def test_items_a_client_creates_are_bounded_in_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    session, driver = make()
    added, _ = say(driver, "x" * 100)
    size = len(json.dumps(added["item"]))
    monkeypatch.setattr(realtime_module, "MAX_CREATED_ITEMS_CHARS", 2 * size)
    say(driver, "y" * 100)
    error = full_error(say(driver, "z" * 100))
    assert error["code"] == "conversation_full"
    assert f"(this one has {size})" in error["message"]
    # Deleting a created item gives its characters back.
    driver.send({"type": "conversation.item.delete", "item_id": next(iter(session.conversation)).id})
    assert [e["type"] for e in say(driver, "z" * 100)] == ["conversation.item.added", "conversation.item.done"]
