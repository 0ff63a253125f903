"""What one session may hold or ask for (issue 10): the conversation's size, responses in flight."""

from __future__ import annotations

import json

import pytest

from openrealtime.session import realtime as realtime_module
from openrealtime.session.responding import MAX_RESPONSES_IN_FLIGHT
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


OUT_OF_BAND = {"type": "response.create", "response": {"conversation": "none", "output_modalities": ["text"]}}


def test_a_session_has_at_most_max_responses_in_flight_and_room_again_when_one_is_done() -> None:
    """Issue 10 defect 3: out-of-band responses were unlimited; one over the bound is refused, changing
    nothing, and a response that finishes makes room."""
    _, driver = make(hold_llm=True)
    say(driver, "Hi")
    for _ in range(MAX_RESPONSES_IN_FLIGHT):
        assert driver.send(OUT_OF_BAND)[0]["type"] == "response.created"
    refused = driver.send({**OUT_OF_BAND, "event_id": "evt_flood"})
    assert refused == [
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "too_many_active_responses",
                "message": f"This session already has {MAX_RESPONSES_IN_FLIGHT} responses in "
                "progress, the most it may have at once. Wait until one is done (response.done) before "
                "creating another.",
                "param": None,
                "event_id": "evt_flood",
            },
        }
    ]
    assert len(driver.held_llm) == MAX_RESPONSES_IN_FLIGHT
    driver.run_llm(driver.held_llm.pop(0))
    assert "response.done" in [e["type"] for e in driver.pump()]
    assert driver.send(OUT_OF_BAND)[0]["type"] == "response.created"
