"""Source text in pieces: what a piece is, where stable words are cut into pieces, and the case they leave in.

A piece is cut at a clause boundary, so that translation can start before the sentence ends:

* at **punctuation** inside the stable words (a comma or full stop that a later stable word follows);
* before a word that **opens a clause** ("and", "because", "which" ...; English sources);
* and only while the listener has nothing left to hear (when waiting costs silence, not just a later
  start): before a determiner, or at ``MAX_PIECE_WORDS`` whatever the words. Finer cuts cost quality
  (a rule-based translator needs the clause), so they are spent only where they buy latency.

The text that leaves (source-transcript deltas, and pieces) is put in sentence case as one running
text per stream: decode windows start anywhere in a sentence, and MT engines read "the" and "The" apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from openrealtime.audio.types import Samples

MIN_PIECE_WORDS = 3  # a piece cut inside an utterance has at least this many words
SOFT_PIECE_WORDS = 4  # eager: from this many stable words on, a determiner may start the next piece
MAX_PIECE_WORDS = 8  # eager: this many stable words are cut wherever they may be cut

_CLAUSE_END = re.compile(r"[,;:.!?…]['\"”’)]*$")
_SENTENCE_END = re.compile(r"[.!?…]['\"”’)]*\s*$")
_FIRST_LETTER = re.compile(r"^(\W*)(\w)")
# Clause openers (a piece may start with them), determiners (an eager cut may start a piece with them)
# and words a piece must not end on. Measured with Apertium on the bench sentences: cuts at punctuation
# and before clause openers change nothing in the translation; cuts before a determiner cost about 2
# chrF points, cuts before a preposition 3 (a piece ending in "jumps" makes the tagger read a noun).
_CLAUSE_OPENERS = frozenset({
    "and", "but", "or", "so", "because", "when", "while", "if", "although", "though", "since", "until",
    "unless", "where", "whereas", "which", "who", "whom", "whose",
})  # fmt: skip
_DETERMINERS = frozenset({
    "the", "a", "an", "this", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some",
    "any", "every", "each",
})  # fmt: skip
_NO_END = frozenset({
    "the", "a", "an", "this", "these", "those", "my", "your", "his", "her", "its", "our", "their",
    "some", "any", "no", "every", "each", "to", "of", "in", "on", "at", "for", "with", "from", "by",
    "about", "into", "over", "and", "or", "but", "so", "if", "is", "are", "was", "were", "be", "been",
    "am", "has", "have", "had", "do", "does", "did", "will", "would", "can", "could", "should", "may",
    "might", "must", "not", "very",
})  # fmt: skip


def _bare(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def sentence_case(text: str, *, starts_sentence: bool) -> str:
    """Upper-case the first letter of a sentence's first words; lower-case a function word that only
    looks like a start because a decode window began there ("After the bridge" continuing a sentence).
    Early decodes of a window are often all lower case, and MT engines analyse "the" and "The" apart.
    """
    match = _FIRST_LETTER.match(text)
    if match is None:
        return text
    first = text.split()[0] if text.split() else ""
    if starts_sentence:
        letter = match.group(2).upper()
    elif _bare(first) in _CLAUSE_OPENERS | _NO_END and first[1:2].islower():
        letter = match.group(2).lower()
    else:
        return text
    return text[: match.start(2)] + letter + text[match.end(2) :]


def piece_cut(words: list[str], *, english: bool, eager: bool) -> int:
    """How many of ``words`` (stable, not yet given out) to give out now as one piece (0: wait).

    Always at clause boundaries: after the last clause punctuation, or (English) before the last clause
    opener. When ``eager`` (the listener has nothing left to hear, so waiting costs silence) also before
    the last determiner from ``SOFT_PIECE_WORDS`` stable words on, and at ``MAX_PIECE_WORDS`` after the
    last word a piece may end on. A piece cut here never has fewer than ``MIN_PIECE_WORDS`` words.
    """
    n = len(words)
    for i in range(n - 1, MIN_PIECE_WORDS - 2, -1):
        if _CLAUSE_END.search(words[i]):
            return i + 1
    bare = [_bare(w) for w in words]
    if english:
        for j in range(n - 1, MIN_PIECE_WORDS - 1, -1):
            if bare[j] in _CLAUSE_OPENERS and bare[j - 1] not in _NO_END:
                return j
    if not eager:
        return 0
    if english and n >= SOFT_PIECE_WORDS:
        for j in range(n - 1, MIN_PIECE_WORDS - 1, -1):
            if bare[j] in _DETERMINERS and bare[j - 1] not in _DETERMINERS:
                return j
    if n >= MAX_PIECE_WORDS:
        if english:
            for j in range(n, MIN_PIECE_WORDS - 1, -1):
                if bare[j - 1] not in _NO_END:
                    return j
        return n
    return 0


@dataclass(frozen=True)
class Piece:
    """Source text ready to translate.

    Attributes:
        text: The words, as the decoder wrote them.
        language: Source language (ISO-639-1), fixed or detected.
        audio: The whole utterance's 16 kHz audio when the piece is a whole utterance (for speech
            translation, which needs the audio), else ``None``.
        final: Whether the piece ends its utterance.
    """

    text: str
    language: str
    audio: Samples | None
    final: bool


SourceOutput = str | Piece  # a source-transcript delta, or a piece


class SourceCase:
    """Sentence case over the source text that leaves: the deltas as one running text, the pieces as another."""

    def __init__(self) -> None:
        self._delta_open = False  # the source text given out so far ends inside a sentence
        self._piece_open = False

    def __call__(self, output: SourceOutput) -> SourceOutput:
        if isinstance(output, str):
            if not output.strip():
                return output
            output = sentence_case(output, starts_sentence=not self._delta_open)
            self._delta_open = not _SENTENCE_END.search(output)
            return output
        text = sentence_case(output.text, starts_sentence=not self._piece_open)
        self._piece_open = not _SENTENCE_END.search(text)
        return replace(output, text=text)
