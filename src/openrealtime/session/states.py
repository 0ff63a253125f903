"""Every state machine of the core and its one transition table (h11's way).

Three machines, one table each:

* a **turn** of the input audio buffer (:class:`TurnState`): from its first audio until its final
  transcript;
* a **response** (:class:`ResponseState`): from the answer begun speculatively in the end-of-turn
  pause, or ``response.create``, until ``response.done``;
* an **utterance** of the translation segmenter (:class:`UtteranceState`): from speech onset until its
  final decode is given out.

A state changes only through :func:`advance`, which checks the table: an illegal transition raises
:class:`IllegalTransition` and changes nothing. That is a bug in the core, never the client's fault,
so it is not a :class:`~openrealtime.exceptions.ProtocolError`: the runtime logs it and closes the
connection with 1011.

::

    turn:       OPEN ──speech──> SPEAKING <──resumed── PAUSED
                  │                 │ ──silence──────────> │
                  └──────commit─────┴────────commit────────┴──> COMMITTED ──final text──> TRANSCRIBED
                  (any state before COMMITTED ──clear──> CLEARED)

    response:   SPECULATIVE ──turn committed──> IN_PROGRESS ──> COMPLETED | INCOMPLETE | CANCELLED | FAILED
                      └──speaker went on / context changed──> DROPPED

    utterance:  SPEAKING <──> PAUSED ──> ENDED ──final decode──> DONE     (SPEAKING ──cut──> ENDED)
"""

from __future__ import annotations

import enum
from typing import TypeVar

from openrealtime.exceptions import OpenRealtimeError


class IllegalTransition(OpenRealtimeError):
    """A transition the table does not allow: a bug in the core (closes the connection with 1011)."""


class TurnState(enum.Enum):
    """One future user item of the input audio buffer."""

    OPEN = "open"  # audio, no speech yet (manual turns begin at the first append)
    SPEAKING = "speaking"
    PAUSED = "paused"  # silence, shorter than what ends the turn; the final decode may start
    COMMITTED = "committed"  # a user item now; its final transcript is on its way
    TRANSCRIBED = "transcribed"
    CLEARED = "cleared"  # input_audio_buffer.clear before the commit


class ResponseState(enum.Enum):
    """One response; ``wire_status`` is what ``response.created`` / ``response.done`` say."""

    SPECULATIVE = "speculative"  # started in the pause: output held until the turn commits
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"
    FAILED = "failed"
    DROPPED = "dropped"  # a speculative answer whose turn went on: never on the wire

    @property
    def wire_status(self) -> str:
        return "in_progress" if self is ResponseState.SPECULATIVE else self.value

    @property
    def finished(self) -> bool:
        return self not in (ResponseState.SPECULATIVE, ResponseState.IN_PROGRESS)


class UtteranceState(enum.Enum):
    """One utterance of the translation segmenter."""

    SPEAKING = "speaking"
    PAUSED = "paused"
    ENDED = "ended"  # its final decode is on its way
    DONE = "done"  # its text is settled and given out


_TURN = {
    TurnState.OPEN: {TurnState.SPEAKING, TurnState.COMMITTED, TurnState.CLEARED},
    TurnState.SPEAKING: {TurnState.PAUSED, TurnState.COMMITTED, TurnState.CLEARED},
    TurnState.PAUSED: {TurnState.SPEAKING, TurnState.COMMITTED, TurnState.CLEARED},
    TurnState.COMMITTED: {TurnState.TRANSCRIBED},
    TurnState.TRANSCRIBED: set(),
    TurnState.CLEARED: set(),
}

_RESPONSE = {
    ResponseState.SPECULATIVE: {ResponseState.IN_PROGRESS, ResponseState.DROPPED},
    ResponseState.IN_PROGRESS: {
        ResponseState.COMPLETED,
        ResponseState.INCOMPLETE,
        ResponseState.CANCELLED,
        ResponseState.FAILED,
    },
    ResponseState.COMPLETED: set(),
    ResponseState.INCOMPLETE: set(),
    ResponseState.CANCELLED: set(),
    ResponseState.FAILED: set(),
    ResponseState.DROPPED: set(),
}

_UTTERANCE = {
    UtteranceState.SPEAKING: {UtteranceState.PAUSED, UtteranceState.ENDED},
    UtteranceState.PAUSED: {UtteranceState.SPEAKING, UtteranceState.ENDED},
    UtteranceState.ENDED: {UtteranceState.DONE},
    UtteranceState.DONE: set(),
}

TRANSITIONS: dict[type[enum.Enum], dict[enum.Enum, set[enum.Enum]]] = {
    TurnState: _TURN,  # type: ignore[dict-item]
    ResponseState: _RESPONSE,  # type: ignore[dict-item]
    UtteranceState: _UTTERANCE,  # type: ignore[dict-item]
}
"""Every legal transition of every machine: ``TRANSITIONS[machine][from]`` is the set of ``to``."""

S = TypeVar("S", TurnState, ResponseState, UtteranceState)


def advance(current: S, new: S) -> S:
    """``new`` if the table allows ``current -> new``, else :class:`IllegalTransition` (nothing changes)."""
    if new not in TRANSITIONS[type(current)][current]:
        raise IllegalTransition(f"{type(current).__name__}: {current.value} -> {new.value} is not a transition")
    return new
