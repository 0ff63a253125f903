"""CaptionBoard: turns in commit order from out-of-order events; deltas append, completed replaces."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from openrealtime.client.captions import CaptionBoard, CaptionTurn
from openrealtime.protocol.codec import server_event_from_dict


def committed(item_id: str, previous_item_id: str | None) -> dict[str, Any]:
    return {
        "type": "input_audio_buffer.committed",
        "event_id": f"event_c_{item_id}",
        "previous_item_id": previous_item_id,
        "item_id": item_id,
    }


def delta(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.delta",
        "event_id": "event_d",
        "item_id": item_id,
        "content_index": 0,
        "delta": text,
    }


def completed(item_id: str, transcript: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": "event_t",
        "item_id": item_id,
        "content_index": 0,
        "transcript": transcript,
        "usage": {"type": "duration", "seconds": 1},
    }


def board_of(*events: dict[str, Any]) -> CaptionBoard:
    board = CaptionBoard()
    for event in events:
        board.feed(server_event_from_dict(event))
    return board


def order(board: CaptionBoard) -> list[str]:
    return [turn.item_id for turn in board.ordered()]


def test_turns_follow_the_commit_links_when_completions_arrive_out_of_order() -> None:
    board = board_of(
        committed("item_A", None),
        committed("item_B", "item_A"),
        committed("item_C", "item_B"),
        completed("item_C", "Third."),
        completed("item_A", "First."),
        completed("item_B", "Second."),
    )
    assert board.ordered() == [
        CaptionTurn("item_A", "First.", final=True, committed=True),
        CaptionTurn("item_B", "Second.", final=True, committed=True),
        CaptionTurn("item_C", "Third.", final=True, committed=True),
    ]
    assert board.transcript() == ["First.", "Second.", "Third."]


def test_a_turn_whose_transcript_arrives_before_its_commit_still_takes_its_place() -> None:
    board = board_of(
        delta("item_B", "Sec"),  # turn B's text is seen first ...
        completed("item_B", "Second."),
        committed("item_A", None),  # ... but A was committed first
        committed("item_B", "item_A"),
        completed("item_A", "First."),
    )
    assert order(board) == ["item_A", "item_B"]
    assert board.transcript() == ["First.", "Second."]


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
def test_the_order_comes_from_the_links_alone(arrival: tuple[int, ...]) -> None:
    links = [committed("i0", None), committed("i1", "i0"), committed("i2", "i1"), committed("i3", "i2")]
    board = CaptionBoard()
    for index in arrival:
        board.feed(server_event_from_dict(completed(f"i{index}", f"t{index}")))
    for index in arrival:
        board.feed(server_event_from_dict(links[index]))
    assert order(board) == ["i0", "i1", "i2", "i3"]
    assert board.transcript() == ["t0", "t1", "t2", "t3"]


def test_uncommitted_turns_come_last() -> None:
    board = board_of(
        delta("item_live", "still"),  # deltas before the commit: the user is still speaking
        committed("item_A", None),
        completed("item_A", "Done."),
        delta("item_live", " talking"),
    )
    assert board.ordered() == [
        CaptionTurn("item_A", "Done.", final=True, committed=True),
        CaptionTurn("item_live", "still talking", final=False, committed=False),
    ]
    assert board.transcript() == ["Done."]  # only finished turns
    board.feed(server_event_from_dict(committed("item_live", "item_A")))
    assert order(board) == ["item_A", "item_live"]
    assert board.turns["item_live"].committed


def test_several_uncommitted_turns_keep_their_arrival_order() -> None:
    board = board_of(delta("x", "a"), delta("y", "b"), committed("z", None), delta("w", "c"))
    assert order(board) == ["z", "x", "y", "w"]


def test_deltas_append_then_completed_replaces() -> None:
    board = CaptionBoard()
    board.feed(server_event_from_dict(delta("item_1", " Hello")))
    board.feed(server_event_from_dict(delta("item_1", " wrld")))
    assert board.turns["item_1"] == CaptionTurn("item_1", " Hello wrld")
    board.feed(server_event_from_dict(completed("item_1", "Hello world.")))
    assert board.turns["item_1"] == CaptionTurn("item_1", "Hello world.", final=True)


def test_deltas_after_completed_are_ignored() -> None:
    board = board_of(completed("item_1", "Final."), delta("item_1", " late"))
    assert board.turns["item_1"].text == "Final."


def test_a_second_completed_replaces_again() -> None:
    board = board_of(completed("item_1", "one"), completed("item_1", "two"))
    assert board.turns["item_1"].text == "two"


def test_missing_or_null_text_counts_as_empty() -> None:
    board = CaptionBoard()
    kind = "conversation.item.input_audio_transcription"
    board.feed(server_event_from_dict({"type": f"{kind}.delta", "item_id": "a", "delta": None}))
    board.feed(server_event_from_dict({"type": f"{kind}.delta", "item_id": "a"}))
    assert board.turns["a"].text == ""
    board.feed(server_event_from_dict({"type": f"{kind}.completed", "item_id": "a", "transcript": None}))
    assert board.turns["a"] == CaptionTurn("a", "", final=True)


def test_transcript_skips_unfinished_and_empty_turns() -> None:
    board = board_of(
        committed("a", None),
        committed("b", "a"),
        committed("c", "b"),
        completed("a", "Hello."),
        completed("b", ""),  # a commit of silence
        delta("c", "partial"),
    )
    assert order(board) == ["a", "b", "c"]
    assert board.transcript() == ["Hello."]


def test_feed_returns_the_turn_it_changed() -> None:
    board = CaptionBoard()
    turn = board.feed(server_event_from_dict(committed("a", None)))
    assert turn is board.turns["a"]
    assert board.feed(server_event_from_dict(delta("a", "x"))) is turn
    assert board.feed(server_event_from_dict(completed("a", "y"))) is turn


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.updated", "session": {}},
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "a"},
        {"type": "conversation.item.added", "item": {"id": "a"}},
        {"type": "error", "error": {"message": "x"}},
        {},
    ],
)
def test_other_events_change_nothing(event: dict[str, Any]) -> None:
    board = CaptionBoard()
    assert board.feed(server_event_from_dict(event)) is None
    assert board.turns == {}
    assert board.ordered() == []


def test_a_chain_that_starts_at_an_unknown_item_still_shows_every_turn() -> None:
    # previous_item_id can name an item this board never saw (a text item, or a client that joined late).
    board = board_of(
        committed("b", "item_created_by_text"),
        committed("c", "b"),
        delta("d", "live"),
    )
    assert order(board) == ["b", "c", "d"]


def test_a_link_cycle_does_not_loop_forever() -> None:
    board = board_of(committed("a", None), committed("b", "a"), committed("a", "b"))
    assert sorted(order(board)) == ["a", "b"]
    assert len(order(board)) == 2


def test_a_repeated_commit_event_changes_nothing() -> None:
    board = board_of(committed("a", None), committed("b", "a"), committed("b", "a"))
    assert order(board) == ["a", "b"]
