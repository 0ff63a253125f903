"""Live captions from repeated decodes of a growing turn: append-only deltas of the agreed words.

Each partial decode yields a hypothesis. A word is *stable* once two successive hypotheses agree on
it and on everything between it and what was already sent (local agreement), and, optionally, once
the newest hypothesis goes on past it (the word at the cut of the audio is a guess); only stable words
are sent, so deltas never need revising. Whisper often rewrites a word it already said ("fine and
steam" becomes "finance team" once it hears more): words already sent are never taken back, and each
hypothesis is aligned to them by their letters (:func:`resume_at`), so agreement goes on after them
instead of stalling until the turn ends (issue 14: word lag p95 8.8 s on a 12 s sentence).
The final decode of the turn supplies the rest: its words are aligned to what was already sent and
only the remainder is appended. Words are compared case- and punctuation-insensitively; the surface
form sent is the newest.

A hypothesis may come with its words' token log-probabilities (:mod:`~openrealtime.session.logprobs`);
each sent word keeps those of the hypothesis it was sent from, in :attr:`CaptionTracker.sent_logprobs`.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import re
from collections.abc import Sequence

from openrealtime.session.logprobs import WordLogprobs

_NORMALIZE = re.compile(r"[^\w']+")


def _norm(word: str) -> str:
    return _NORMALIZE.sub("", word.lower())


def _letters(words: Sequence[str]) -> str:
    return "".join(_norm(w) for w in words)


def _agreed_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if _norm(x) != _norm(y):
            break
        n += 1
    return n


ALIGN_TAIL_WORDS = 60  # of the sent words, the last ones a hypothesis is aligned to (bounded cost)
ALIGN_SLACK_WORDS = 20  # how far a hypothesis's word count may have drifted from the sent words'


def resume_at(sent: Sequence[str], words: Sequence[str]) -> int:
    """Where ``sent`` (words already shown) ends in the hypothesis ``words``: the index of the first
    word of ``words`` that comes after them.

    Aligned by letters, not words, so a rewritten word still lines up ("fine and steam" ends where
    "finance team" ends); past the last letters in common, the rest of ``sent`` stands for as many
    letters of ``words``. A word counts as covered when at least half of its letters are. Only the
    last ``ALIGN_TAIL_WORDS`` sent words are aligned, so the cost stays bounded in long turns.
    """
    if _agreed_prefix(list(sent), list(words)) == len(sent):
        return len(sent)
    skip = max(0, len(sent) - ALIGN_TAIL_WORDS)  # sent words taken to stand for as many of ``words``
    first = max(0, skip - ALIGN_SLACK_WORDS)
    region = [_norm(w) for w in words[first:]]
    starts = [0, *itertools.accumulate(len(w) for w in region)][: len(region)]
    a = _letters(sent[skip:])
    b = "".join(region)
    blocks = [block for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks() if block.size]
    if blocks:
        last = blocks[-1]
        end = last.b + last.size + (len(a) - last.a - last.size)
    else:  # no letter in common: the sent letters stand for as many after the skipped words
        end = (starts[skip - first] if skip - first < len(starts) else len(b)) + len(a)
    return min(len(words), first + _covered(starts, region, end))


def _covered(starts: list[int], words: list[str], end: int) -> int:
    """How many of ``words`` (starting at letter offsets ``starts``) the first ``end`` letters cover."""
    index = bisect.bisect_right(starts, end) - 1  # the word that letter ``end`` falls in
    if index < 0:
        return 0
    inside = end - starts[index]
    if inside * 2 >= len(words[index]) and inside > 0:
        return index + 1
    return index


class CaptionTracker:
    """Turns successive hypotheses of one turn into append-only delta strings.

    Args:
        hold_cut_word: Never send the last word of the newest hypothesis, however many decodes
            agree on it. It is where the audio was cut: often half a word ("light" for "lights"),
            and Whisper closes a cut hypothesis with a period. Two decodes a few hundred ms apart
            that end on the same word agree on that guess, not on what was said.
    """

    def __init__(self, *, hold_cut_word: bool = False) -> None:
        self.sent: list[str] = []  # words already sent as deltas
        self.sent_logprobs: list[WordLogprobs | None] = []  # each sent word's tokens, when known
        self.frozen: list[str] = []  # words of audio before the decode window (see freeze)
        self._previous: list[str] | None = None
        self._hold_cut_word = hold_cut_word

    @property
    def text(self) -> str:
        return " ".join(self.sent)

    def _delta(self, words: list[str], logprobs: list[WordLogprobs | None]) -> str:
        if not words:
            return ""
        joined = " ".join(words)
        self.sent.extend(words)
        self.sent_logprobs.extend(logprobs)
        return joined if len(self.sent) == len(words) else " " + joined

    def _logprobs(self, window_words: int, logprobs: Sequence[WordLogprobs] | None) -> list[WordLogprobs | None]:
        """The tokens of each word of a hypothesis: the frozen words', then the window's."""
        window: list[WordLogprobs | None] = [None] * window_words
        if logprobs is not None and len(logprobs) == window_words:
            window = list(logprobs)
        return self.sent_logprobs[: len(self.frozen)] + window

    def partial(self, window_text: str, logprobs: Sequence[WordLogprobs] | None = None) -> str:
        """Feed a partial hypothesis of the window (with its words' tokens, if known); returns the
        delta to send ("" for none)."""
        words = self.frozen + window_text.split()
        marks = self._logprobs(len(words) - len(self.frozen), logprobs)
        previous, self._previous = self._previous, words
        if previous is None:
            return ""
        start, before = self._after_sent(words), self._after_sent(previous)
        agreed = _agreed_prefix(previous[before:], words[start:])
        if self._hold_cut_word:
            agreed = min(agreed, max(0, len(words) - start - 1))
        return self._delta(words[start : start + agreed], marks[start : start + agreed])

    def _after_sent(self, words: list[str]) -> int:
        """Where the sent words end in a hypothesis that starts with the frozen words."""
        frozen = len(self.frozen)
        return frozen + resume_at(self.sent[frozen:], words[frozen:])

    def freeze(self, words: list[str]) -> bool:
        """Fix the sent words that stand for ``words`` (the decode of audio now dropped from the
        window) as the start of the turn.

        Only possible when all of ``words`` were sent, give or take rewritten words (aligned as in
        :func:`resume_at`); returns whether they were frozen.
        """
        if not words:
            return True
        frozen = len(self.frozen)
        tail = self.sent[frozen:]
        if len(_letters(words)) > len(_letters(tail)):
            return False  # not all of them were sent yet
        count = resume_at(words, tail)  # the sent words that stand for ``words``
        if count == 0:
            return False
        self.frozen = self.sent[: frozen + count]
        self._previous = None
        return True

    def final(self, text: str, logprobs: Sequence[WordLogprobs] | None = None) -> str:
        """Feed the final hypothesis of the whole turn (with its words' tokens, if known); returns
        the last delta: the words of ``text`` after those already sent. :attr:`text` is then the
        captions' whole text, which is ``text`` itself unless it rewrote words already sent."""
        words = text.split()
        marks: list[WordLogprobs | None] = [None] * len(words)
        if logprobs is not None and len(logprobs) == len(words):
            marks = list(logprobs)
        start = resume_at(self.sent, words) if self.sent else 0
        return self._delta(words[start:], marks[start:])
