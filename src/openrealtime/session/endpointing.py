"""Semantic end-of-turn: decide from *what was said* whether a pause ends the speaker's turn.

``semantic_vad`` must not be a renamed ``server_vad``. At each pause the session reads the latest
decode of the turn: a finished sentence ends the turn after a short pause; a sentence that stops on
a conjunction, a preposition, an article or a filler ("and", "to", "the", "um") waits longer, up to
the eagerness cap (reference 9.1: low 8 s, medium 4 s, high 2 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_INCOMPLETE_ENDINGS = frozenset(
    [
        "and",
        "or",
        "but",
        "so",
        "because",
        "if",
        "when",
        "while",
        "then",
        "than",
        "that",
        "which",
        "who",
        "whose",
        "whom",
        "where",
        "the",
        "a",
        "an",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "into",
        "over",
        "under",
        "my",
        "your",
        "his",
        "her",
        "our",
        "their",
        "its",
        "this",
        "these",
        "those",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "i",
        "we",
        "you",
        "they",
        "he",
        "she",
        "it",
        "um",
        "uh",
        "er",
        "hmm",
        "like",
        "just",
        "very",
        "really",
        "also",
        "not",
        "no",
    ]
)
_TRAILING_PUNCTUATION = re.compile(r"[.!?]\s*$")
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class Eagerness:
    """How long a pause must be before a turn ends, when the words look finished or not."""

    complete_pause_ms: int
    cap_ms: int


EAGERNESS = {
    "high": Eagerness(complete_pause_ms=250, cap_ms=2_000),
    "medium": Eagerness(complete_pause_ms=500, cap_ms=4_000),
    "auto": Eagerness(complete_pause_ms=500, cap_ms=4_000),
    "low": Eagerness(complete_pause_ms=900, cap_ms=8_000),
}


def looks_complete(text: str) -> bool:
    """Whether ``text`` reads like a finished turn (a sentence that does not trail off)."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    if words[-1] in _INCOMPLETE_ENDINGS:
        return False
    return bool(_TRAILING_PUNCTUATION.search(text)) or len(words) >= 3
