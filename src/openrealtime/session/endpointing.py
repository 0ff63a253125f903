"""Semantic end-of-turn: decide from *how and what was said* whether a pause ends the speaker's turn.

``semantic_vad`` must not be a renamed ``server_vad``. Its decision comes from an end-of-turn model
(Smart Turn v3.2, :mod:`openrealtime.engines.smart_turn`) that hears the turn's audio: when a pause
reaches :attr:`EndOfTurnPolicy.check_pause_ms`, the session asks the model (a
:class:`~openrealtime.session.commands.PredictTurnEnd` command) and ends the turn when the
probability that it is complete reaches the eagerness's threshold; otherwise it asks again every
:attr:`~EndOfTurnPolicy.recheck_ms` of the same pause, and ends the turn anyway once the pause
lasts :attr:`~EndOfTurnPolicy.max_wait_ms` (OpenAI's eagerness caps, reference 9.1: low 8 s,
medium 4 s, high 2 s).

The words weigh in too: the model's "complete" is vetoed when the pause's transcript trails off on a
function word (:func:`looks_complete`), and, with the default in-process LLM, when the LLM gives the
end of the user's message less than a millionth after those words (:mod:`~openrealtime.session.eou_text`).

Without the model (not installed, or failing), the session falls back to a word rule on the latest
decode (:func:`looks_complete`): a finished sentence ends the turn after a short pause; one that
stops on a conjunction, a preposition, an article or a filler ("and", "to", "the", "um") waits, up to
the same cap. The rule is English only; the model is not.
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


EAGERNESS = {  # the word rule (fallback)
    "high": Eagerness(complete_pause_ms=250, cap_ms=2_000),
    "medium": Eagerness(complete_pause_ms=500, cap_ms=4_000),
    "auto": Eagerness(complete_pause_ms=500, cap_ms=4_000),
    "low": Eagerness(complete_pause_ms=900, cap_ms=8_000),
}


def trails_off(word: str) -> bool:
    """Whether a phrase that ends on ``word`` is left hanging ("to", "the", "is", "and")."""
    return word.lower().strip(".,;:!?\"'") in _INCOMPLETE_ENDINGS


def looks_complete(text: str) -> bool:
    """Whether ``text`` reads like a finished turn (a sentence that does not trail off)."""
    words = _WORD.findall(text.lower())
    if not words:
        return False
    if words[-1] in _INCOMPLETE_ENDINGS:
        return False
    return bool(_TRAILING_PUNCTUATION.search(text)) or len(words) >= 3


@dataclass(frozen=True)
class EndOfTurnPolicy:
    """How an eagerness uses the end-of-turn model.

    Attributes:
        threshold: Probability of "complete" at or above which the pause ends the turn.
        check_pause_ms: Pause after which the model is first asked (it hears this silence too).
        recheck_ms: Further pause after which an "incomplete" answer is asked again, with the longer
            silence at the end of the audio.
        max_wait_ms: Pause that ends the turn whatever the model says (the eagerness cap).
    """

    threshold: float
    check_pause_ms: int
    recheck_ms: int
    max_wait_ms: int


# Why these numbers (``openrealtime bench turns``, docs/benchmarks.md): Smart Turn gives most finished
# sentences 0.9-0.99 once 100-200 ms of silence follow them, so a question asked at a 128-256 ms pause
# and answered in ~50 ms ends them about 200-300 ms after the last word. Alone it is not enough: on the
# bench's synthesized pause set it also called 48 % of the mid-sentence pauses complete at 0.5 (the
# prosody of TTS fragments is not a hesitating human's), and the words that trail off ("moved to",
# "a flight from") veto most of those (15 % left), at no cost to finished turns. So the model ends a
# turn only together with the words (see ``input_buffer``), and the word rule's longer pause (2.5 times
# longer when the model said "goes on") still ends a finished-looking turn the model doubts. ``high``
# asks again every 500 ms; ``low`` asks later, wants 0.7 and waits up to 8 s. ``auto`` is ``medium``, as
# for OpenAI. ``medium`` asks at 128 ms, as ``high``, not 160: offline (``bench/turn_verdicts.py``
# ``pause_sweep``, the 39 clips' 40 pause points and 39 ends) the model and the words together end
# 12 % of the mid-sentence pauses and 62 % of the clip ends asked at 128 ms, against 15 % and 62 % at
# 160, so no more cut-offs; live (``--turn-trace``) the model's answer, not the pause's words, was
# the later of the two at the median (+327 against +264 ms after the last word), so the turn ends
# about 32 ms sooner. Since session 29 ``high`` and ``medium`` ask at 64 ms: the model's ~45 ms of one
# core then runs beside the pause's decode (one thread) instead of beside the answer's first clause
# (two threads, begun when the words come), whose first clause came ~20 ms sooner; offline the model
# and the words end the same 14 % of mid-sentence pauses at 64 ms as at 128, and 55 % of the clip ends
# at the first question against 60 % (the others end by the word rule or the LLM's clear rescue).
END_OF_TURN = {
    "high": EndOfTurnPolicy(threshold=0.5, check_pause_ms=64, recheck_ms=500, max_wait_ms=2_000),
    "medium": EndOfTurnPolicy(threshold=0.5, check_pause_ms=64, recheck_ms=1_000, max_wait_ms=4_000),
    "auto": EndOfTurnPolicy(threshold=0.5, check_pause_ms=64, recheck_ms=1_000, max_wait_ms=4_000),
    "low": EndOfTurnPolicy(threshold=0.7, check_pause_ms=256, recheck_ms=2_000, max_wait_ms=8_000),
}
