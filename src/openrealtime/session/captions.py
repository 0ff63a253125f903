"""Live captions from repeated decodes of a growing turn: append-only deltas of the agreed prefix.

Each partial decode yields a hypothesis. A word is *stable* once two successive hypotheses agree on
it and on everything before it (local agreement), and, optionally, once the newest hypothesis goes on
past it (the word at the cut of the audio is a guess); only stable words are sent, so deltas never
need revising. The final decode of the turn supplies the rest: its words are aligned to what was already
sent and only the remainder is appended, so the concatenated deltas always equal the transcript.
Words are compared case- and punctuation-insensitively; the surface form sent is the newest.

A hypothesis may come with its words' token log-probabilities (:mod:`~openrealtime.session.logprobs`);
each sent word keeps those of the hypothesis it was sent from, in :attr:`CaptionTracker.sent_logprobs`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from openrealtime.session.logprobs import WordLogprobs

_NORMALIZE = re.compile(r"[^\w']+")


def _norm(word: str) -> str:
    return _NORMALIZE.sub("", word.lower())


def _agreed_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if _norm(x) != _norm(y):
            break
        n += 1
    return n


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
        agreed = _agreed_prefix(previous, words)
        if self._hold_cut_word:
            agreed = min(agreed, max(0, len(words) - 1))
        stable = words[:agreed]
        if len(stable) <= len(self.sent) or _agreed_prefix(stable, self.sent) < len(self.sent):
            return ""
        return self._delta(stable[len(self.sent) :], marks[len(self.sent) : agreed])

    def freeze(self, words: list[str]) -> bool:
        """Fix ``words`` (the decode of audio now dropped from the window) as the start of the turn.

        Only possible when they are all already sent; returns whether they were frozen.
        """
        candidate = self.frozen + words
        if len(candidate) > len(self.sent) or _agreed_prefix(candidate, self.sent) < len(candidate):
            return False
        self.frozen = self.sent[: len(candidate)]
        self._previous = None
        return True

    def final(self, window_text: str, logprobs: Sequence[WordLogprobs] | None = None) -> str:
        """Feed the final hypothesis (with its words' tokens, if known); returns the last delta.
        :attr:`text` is then the transcript."""
        words = self.frozen + window_text.split()
        marks = self._logprobs(len(words) - len(self.frozen), logprobs)
        if not self.sent:
            return self._delta(words, marks)
        sent_norm = [_norm(w) for w in self.sent]
        words_norm = [_norm(w) for w in words]
        if words_norm[: len(sent_norm)] == sent_norm:
            return self._delta(words[len(self.sent) :], marks[len(self.sent) :])
        # The final decode revised words already sent: find where the sent text ends in it.
        # After the last matching block, the rest of the sent words stand for as many final words; with
        # no match at all the sent words stand for the first ones (resuming at 0 would repeat them).
        matcher = difflib.SequenceMatcher(a=sent_norm, b=words_norm, autojunk=False)
        resume = len(sent_norm)
        for block in matcher.get_matching_blocks():
            if block.size and block.a + block.size <= len(sent_norm):
                resume = block.b + block.size + (len(sent_norm) - block.a - block.size)
        resume = min(resume, len(words))
        return self._delta(words[resume:], marks[resume:])
