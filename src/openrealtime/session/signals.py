"""Signals: what one part of the core tells the session that owns it, returned in order with its events.

A part (the input buffer, the translation segmenter) returns one ordered list of outputs: server
events, commands and these signals. The owning session walks the list in order, passing events and
commands on and reacting to each signal where it stands, so its own events (a barge-in's
``response.done``, a committed turn's conversation item) land right after the event that caused
them, with no callbacks between the parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.audio.types import Samples
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import Command


@dataclass(frozen=True)
class SpeechStarted:
    """A turn's speech began (after its ``input_audio_buffer.speech_started``): barge-in point."""

    item_id: str


@dataclass(frozen=True)
class TurnCommitted:
    """A turn became a user item; its audio spans ``[start, end)`` in 16 kHz samples, and is ``audio``
    (a copy: the buffer forgets it at the commit).

    The session writes ``input_audio_buffer.committed`` itself: only it knows the item's predecessor.
    """

    item_id: str
    start: int
    end: int
    audio: Samples


@dataclass(frozen=True)
class TranscriptFinal:
    """The final transcript of a committed turn; ``None`` when its decode failed."""

    item_id: str
    text: str | None


@dataclass(frozen=True)
class TurnMayEnd:
    """A pause in the turn, with the transcript of everything before it: an answer may start early."""

    item_id: str
    text: str


@dataclass(frozen=True)
class TurnHeard:
    """A live-caption decode of a turn still spoken heard new words: ``text`` is its words but the last
    (a word the decode's end may have cut, which the next decode may hear otherwise)."""

    item_id: str
    text: str


@dataclass(frozen=True)
class TurnGoesOn:
    """The speaker went on after a pause that was signalled with :class:`TurnMayEnd`."""

    item_id: str


Signal = SpeechStarted | TurnCommitted | TranscriptFinal | TurnMayEnd | TurnGoesOn | TurnHeard
Output = se.ServerEvent | Command | Signal
"""What a part of the core returns from each call, in the order it happened."""
