"""Live captions in turn order, from events that may arrive out of order.

Turns are ordered by the linked list that ``input_audio_buffer.committed.previous_item_id`` forms
(reference 7.3), not by when their transcripts arrive; a turn still being spoken (deltas before its
commit) is shown last. Deltas are appended; ``completed`` replaces the text with the final transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent


@dataclass
class CaptionTurn:
    item_id: str
    text: str = ""
    final: bool = False
    committed: bool = False


class CaptionBoard:
    """Folds transcription events into an ordered list of turns."""

    def __init__(self) -> None:
        self.turns: dict[str, CaptionTurn] = {}
        self._next: dict[str | None, str] = {}  # previous_item_id -> item_id

    def _turn(self, item_id: str) -> CaptionTurn:
        return self.turns.setdefault(item_id, CaptionTurn(item_id))

    def feed(self, event: se.ServerEvent | UnknownServerEvent) -> CaptionTurn | None:
        """Apply one server event; returns the turn it changed, if any."""
        match event:
            case se.Committed():
                turn = self._turn(event.item_id)
                turn.committed = True
                self._next[event.previous_item_id] = turn.item_id
                return turn
            case se.TranscriptionDelta():
                turn = self._turn(event.item_id)
                if not turn.final:
                    turn.text += event.delta
                return turn
            case se.TranscriptionCompleted():
                turn = self._turn(event.item_id)
                turn.text = event.transcript
                turn.final = True
                return turn
        return None

    def ordered(self) -> list[CaptionTurn]:
        """Committed turns in commit order, then the ones not committed yet."""
        order: list[CaptionTurn] = []
        seen: set[str] = set()
        cursor = self._next.get(None)
        while cursor is not None and cursor not in seen:
            seen.add(cursor)
            order.append(self.turns[cursor])
            cursor = self._next.get(cursor)
        # A client that joined late (or a chain with a gap) still shows every turn.
        order += [t for t in self.turns.values() if t.committed and t.item_id not in seen]
        order += [t for t in self.turns.values() if not t.committed]
        return order

    def transcript(self) -> list[str]:
        return [t.text for t in self.ordered() if t.final and t.text]
