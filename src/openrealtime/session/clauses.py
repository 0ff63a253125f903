"""Cut a streamed answer into speakable pieces, so the first audio leaves before the answer is done.

The first piece is cut early (at a comma or after a few words) because its latency is what the user
hears; later pieces are whole sentences, which sound better and cost the TTS no more per character.
"""

from __future__ import annotations

import re

FIRST_CLAUSE_MIN_CHARS = 12
FIRST_CLAUSE_MAX_CHARS = 40  # a longer first clause is cut at a word: every token of it is waited for
LATER_CLAUSE_MIN_CHARS = 24
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s")


class ClauseSplitter:
    """Feed text deltas; take finished clauses with :meth:`feed` and the rest with :meth:`flush`."""

    def __init__(self) -> None:
        self._pending = ""
        self._emitted = 0

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
        min_chars = FIRST_CLAUSE_MIN_CHARS if first else LATER_CLAUSE_MIN_CHARS
        for match in _SENTENCE_END.finditer(text):
            if match.end() >= min_chars or first:
                return match.end()
        if first:
            for match in _CLAUSE_END.finditer(text):
                if match.end() >= FIRST_CLAUSE_MIN_CHARS:
                    return match.end()
            if len(text) > FIRST_CLAUSE_MAX_CHARS:
                space = text.rfind(" ", 0, FIRST_CLAUSE_MAX_CHARS)
                return space + 1 if space > 0 else None
        return None

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        if rest:
            self._emitted += 1
            return [rest]
        return []
