"""``semantic_vad``'s text signal: how likely the LLM thinks the user's message ends after the pause's words.

Smart Turn (:mod:`~openrealtime.session.endpointing`) hears the audio; the word list catches words
that trail off ("to", "the"). Neither objects to "Please remind me to call." (a sentence, and Smart
Turn's 0.98) or "I was wondering if you could." at a mid-sentence pause. The LLM's probability of
its end-of-message token (``<|im_end|>``) right after the words, lower-cased and without punctuation
(:class:`~openrealtime.session.commands.ScoreTurnWords`, as LiveKit's turn detector asks its
fine-tuned Qwen), does: on ``bench turns``' pause set (``bench/turn_end_token.py``, offline,
SmolLM2-135M-Instruct under the default instructions) every mid-sentence pause's words scored at
most 1.3e-7 except "please remind me to call my mother tomorrow" (1.1e-3, a whole sentence), and
36 of the 39 clip ends at least 4.6e-6 (the three below were Whisper's garbled words). So, for
finished-looking words only, a *veto*: below :data:`VETO_BELOW`, Smart Turn's "complete" does not
end the turn, and the word rule waits its doubted pause, as when Smart Turn says "goes on".
Offline, medium: clips cut off 2 of 24 instead of 3, clip ends ended at the first question 23 of
39 instead of 24 (a garbled decode).

The other use, a *rescue* of words the LLM reads as a whole message in a turn Smart Turn doubts, is
made only late. Ending such a turn after a short pause (256 ms: 35 of 39 clip ends ended offline
instead of 24) cut clips off live: the pause's decode often drops a trailing function word that the
offline decode of the same audio kept ("I'd like to book a table for two people." for "...two
people, at"), which reads as a whole message to the LLM too (5e-5); it cut 3 of 5 clips with pauses
in a short live A/B where the session without it cut none. So the rescued words wait 1.5 times the
word rule's pause instead of the doubted 2.5 (``turn_end.RESCUED_PAUSE_FACTOR``: 750 ms at
medium, against the set's 400-900 ms pauses): on all 40 clips, interleaved, the turn ends' p90
went from 1.34 to 0.85 s and no clip more was cut off. Words the LLM reads as a whole message
*clearly* (:data:`CLEAR_ABOVE`, 2e-4: the log midpoint between that truncated decode's 5e-5, the
highest of any mid-sentence pause's words but the sentence complete at its pause, and the clip
ends' median, 8.4e-4) wait less (``turn_end.CLEAR_PAUSE_FACTOR``): live, Smart Turn doubted 17
of the 40 clip ends of ``bench turns`` (its TTS voices, sentences with inserted pauses), which all
waited the 750 ms, and 14 of those 17 had P(end) of 1.7e-4 to 6.8e-3.

The signal is absent (the session decides as before) when the server's LLM cannot give it
(``END_OF_TURN_TEXT_UNAVAILABLE``: a remote LLM) or a question failed. While a question is in
flight, a "complete" waits for it, but only until the pause reaches :data:`WAIT_PAUSE_MS`: on two
cores the question shares them with the answer begun on the same words, and a quick full bench that
waited for every answer ended finished questions 0.6 s after their last word at the median instead
of 0.3 s; the mid-sentence pauses the veto is for last 400 ms or more. The words' probability does
not depend on the turn, so answers are kept by words for the session (a few at most).

The question is asked when the pause's words are known, the moment the answer begun on them starts
its first clause; on two cores the two stall each other, so the runtime may hold the question while
the answer writes its first clause (:func:`hold_ms`), but only as long as leaves its answer time to
come before :data:`WAIT_PAUSE_MS`: a hold of a fixed 100 ms brought it ~270 ms into the pause at the
median (session 29), and a slower run let a "complete" cut "I was wondering if you could |" off.
"""

from __future__ import annotations

import enum

from openrealtime.session.commands import (
    END_OF_TURN_TEXT_UNAVAILABLE,
    JobFailed,
    ScoreTurnWords,
    TurnEndPredicted,
    WarmTurnWords,
)
from openrealtime.session.ids import Ids

VETO_BELOW = 1e-6
CLEAR_ABOVE = 2e-4  # at or above: the words read as a whole message clearly (a doubted turn waits less)
WAIT_PAUSE_MS = 300  # a "complete" waits for a question in flight until the pause is this long
KEPT_WORDS = 8  # answers kept by words (the pauses of a turn or two)
MAX_HOLD_MS = 100  # the longest a question is held for an answer's first clause
# What a question needs once let go, with room for a loaded machine: ~70 ms of one core for a whole
# sentence's words, a few tokens (~10-30 ms) after the words warmed while the user spoke.
ANSWER_MS = 100


class TextSignal(enum.Enum):
    """What the words say about the turn."""

    ABSENT = "absent"  # not asked (the words trail off), unavailable, or the question failed
    PENDING = "pending"  # asked, not answered yet
    GOES_ON = "goes_on"  # below VETO_BELOW: vetoes the model's "complete"
    ENDS = "ends"  # at or above it: no objection
    ENDS_CLEARLY = "ends_clearly"  # at or above CLEAR_ABOVE


class WordsEndOfTurn:
    """The LLM's questions about a session's pause words, and their answers.

    Args:
        ids: The session's id source (each question is a job).
    """

    def __init__(self, ids: Ids) -> None:
        self._ids = ids
        self.unavailable = False  # the server's LLM cannot tell: never ask again
        self._asked: dict[str, str] = {}  # job id -> words, in flight
        self._answers: dict[str, float | None] = {}  # words -> P(end), None for a failed question

    def ask(self, item_id: str, words: str, paused_ms: float) -> list[ScoreTurnWords]:
        """The question for ``words`` (``paused_ms`` into the pause), unless they were asked already
        (or cannot be)."""
        if self.unavailable or words in self._answers or words in self._asked.values():
            return []
        question = ScoreTurnWords(self._ids.new("job"), item_id, words, hold_ms=hold_ms(paused_ms))
        self._asked[question.job_id] = words
        return [question]

    def warm(self, words: str) -> list[WarmTurnWords]:
        """New words of a turn still spoken (``TurnHeard``): the LLM evaluates them now, so the
        question at the pause evaluates only the words after them."""
        if self.unavailable:
            return []
        return [WarmTurnWords(job_id=self._ids.new("job"), words=words)]

    def owns(self, job_id: str) -> bool:
        return job_id in self._asked

    def on_result(self, result: TurnEndPredicted | JobFailed) -> None:
        words = self._asked.pop(result.job_id)
        if isinstance(result, JobFailed):
            self.unavailable = self.unavailable or result.code == END_OF_TURN_TEXT_UNAVAILABLE
            probability = None
        else:
            probability = result.probability
        if len(self._answers) >= KEPT_WORDS:
            self._answers.pop(next(iter(self._answers)))
        self._answers[words] = probability

    def signal(self, words: str) -> TextSignal:
        """What is known of ``words``."""
        if self.unavailable:
            return TextSignal.ABSENT
        if words in self._answers:
            probability = self._answers[words]
            if probability is None:
                return TextSignal.ABSENT
            if probability < VETO_BELOW:
                return TextSignal.GOES_ON
            return TextSignal.ENDS_CLEARLY if probability >= CLEAR_ABOVE else TextSignal.ENDS
        return TextSignal.PENDING if words in self._asked.values() else TextSignal.ABSENT


def hold_ms(paused_ms: float) -> float:
    """How long a question asked ``paused_ms`` into the pause may wait for an answer's first clause:
    at most :data:`MAX_HOLD_MS`, and never past :data:`WAIT_PAUSE_MS` less :data:`ANSWER_MS`."""
    return max(0.0, min(float(MAX_HOLD_MS), WAIT_PAUSE_MS - ANSWER_MS - paused_ms))
