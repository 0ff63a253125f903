"""The transition table: every machine's legal moves, and illegal ones refused without a change."""

from __future__ import annotations

import enum

import pytest

from openrealtime.session.states import (
    TRANSITIONS,
    IllegalTransition,
    ResponseState,
    TurnState,
    UtteranceState,
    advance,
)
from openrealtime.session.turns import Turn


def test_every_state_of_every_machine_has_a_row_and_only_moves_inside_its_machine() -> None:
    for machine, table in TRANSITIONS.items():
        assert set(table) == set(machine)
        for targets in table.values():
            assert all(isinstance(t, machine) for t in targets)


@pytest.mark.parametrize(
    "machine",
    [TurnState, ResponseState, UtteranceState],
)
def test_advance_allows_exactly_the_table(machine: type[enum.Enum]) -> None:
    for current in machine:
        for new in machine:
            if new in TRANSITIONS[machine][current]:
                assert advance(current, new) is new  # type: ignore[type-var]
            else:
                with pytest.raises(IllegalTransition, match=f"{current.value} -> {new.value}"):
                    advance(current, new)  # type: ignore[type-var]


def test_an_illegal_transition_changes_nothing() -> None:
    turn = Turn(item_id="item_1", start=0, window_start=0)
    turn.to(TurnState.SPEAKING)
    turn.to(TurnState.COMMITTED)
    with pytest.raises(IllegalTransition):
        turn.to(TurnState.SPEAKING)
    assert turn.state is TurnState.COMMITTED
    assert turn.committed


def test_terminal_states() -> None:
    terminal = {state for table in TRANSITIONS.values() for state, targets in table.items() if not targets}
    assert terminal == {
        TurnState.TRANSCRIBED,
        TurnState.CLEARED,
        ResponseState.COMPLETED,
        ResponseState.INCOMPLETE,
        ResponseState.CANCELLED,
        ResponseState.FAILED,
        ResponseState.DROPPED,
        UtteranceState.DONE,
    }
    assert {s for s in ResponseState if s.finished} == terminal & set(ResponseState)


def test_a_speculative_response_is_in_progress_on_the_wire_and_can_only_be_promoted_or_dropped() -> None:
    assert ResponseState.SPECULATIVE.wire_status == "in_progress"
    assert TRANSITIONS[ResponseState][ResponseState.SPECULATIVE] == {ResponseState.IN_PROGRESS, ResponseState.DROPPED}
