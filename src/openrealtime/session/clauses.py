"""Cut a streamed answer into speakable pieces, so the first audio leaves before the answer is done.

The first piece is cut early (at its first sentence end, at a comma, or after a few words) because
its latency is what the user hears; later pieces are whole sentences, which sound better and cost the
TTS no more per character.

Where the first piece is cut after a few words, it is cut where the phrase can rest (not after "of",
"the", "is", "could": "The largest ocean | is the Pacific Ocean," rather than "The largest ocean is |
the Pacific Ocean,"), and the piece after it ends at its sentence's end or next comma however short
("is Paris."), so the rest of a long sentence is not waited for and synthesized in one piece while the
short first piece plays out (a gap: ``python -m openrealtime.bench.first_clause``).
"""

from __future__ import annotations

import re

from openrealtime.session.endpointing import trails_off

FIRST_CLAUSE_MIN_CHARS = 12
# A longer first piece without a sentence end or comma is cut at a word: every token of it is waited
# for, and piper synthesizes it whole before its first sample. bench/first_clause.py (default LLM and
# voice, load ~2.5, 6 questions x 2-3 runs) put the first audio 0.16 / 0.21 s after the request with a
# cut at 24 / 40 characters in one run, 0.30 / 0.34 s in another (synthesis 63-75 against 89-104 ms,
# the LLM's tokens ~10 ms each); 16 saves another ~30 ms but leaves two-word pieces ("The capital").
FIRST_CLAUSE_MAX_CHARS = 24
LATER_CLAUSE_MIN_CHARS = 24
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s")
# Besides the words a turn trails off on (endpointing): auxiliaries and determiners a phrase cannot
# rest on either.
_HANGING = frozenset(
    {
        *("could", "would", "can", "will", "should", "must", "may", "might", "shall"),
        *("have", "has", "had", "do", "does", "did"),
        *("any", "some", "every", "each", "all", "more", "most", "such", "as", "how", "what"),
    }
)


def hangs(word: str) -> bool:
    """Whether a piece of speech that ends on ``word`` is left hanging."""
    return trails_off(word) or word.lower().strip(".,;:!?\"'") in _HANGING


class ClauseSplitter:
    """Feed text deltas; take finished clauses with :meth:`feed` and the rest with :meth:`flush`.

    Args:
        first_max_chars: Length past which a first clause with no sentence end or comma yet is cut
            at a word (``bench/first_clause.py`` measures what each length costs).
    """

    def __init__(self, *, first_max_chars: int = FIRST_CLAUSE_MAX_CHARS) -> None:
        self._pending = ""
        self._emitted = 0
        self._first_max_chars = first_max_chars
        self._mid_sentence = False  # the last clause was cut at a word, inside a sentence

    def feed(self, delta: str) -> list[str]:
        self._pending += delta
        clauses: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                return clauses
            clause, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if clause:
                clauses.append(clause)
                self._emitted += 1

    def _find_cut(self) -> int | None:
        text = self._pending
        first = self._emitted == 0
        if self._mid_sentence:  # the rest of a sentence cut at a word: up to its end or next comma
            match = _SENTENCE_END.search(text) or _CLAUSE_END.search(text)
            if match is not None:
                self._mid_sentence = False
                return match.end()
            return None
        min_chars = FIRST_CLAUSE_MIN_CHARS if first else LATER_CLAUSE_MIN_CHARS
        for match in _SENTENCE_END.finditer(text):
            if match.end() >= min_chars or first:
                return match.end()
        if first:
            for match in _CLAUSE_END.finditer(text):
                if match.end() >= FIRST_CLAUSE_MIN_CHARS:
                    return match.end()
            if len(text) > self._first_max_chars:
                cut = _word_cut(text, self._first_max_chars)
                self._mid_sentence = cut is not None
                return cut
        return None

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        self._mid_sentence = False
        if rest:
            self._emitted += 1
            return [rest]
        return []


def _word_cut(text: str, max_chars: int) -> int | None:
    """Where to cut a first clause that has no punctuation within ``max_chars``: at the last word
    boundary, moved back past words the phrase cannot rest on, as long as two words are left;
    ``None`` when there is no space to cut at."""
    space = text.rfind(" ", 0, max_chars)
    if space <= 0:
        return None
    while True:
        before = text.rfind(" ", 0, space)
        if before <= 0 or not hangs(text[before + 1 : space]) or " " not in text[:before].strip():
            return space + 1
        space = before
