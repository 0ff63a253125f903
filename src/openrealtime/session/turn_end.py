"""When ``semantic_vad`` ends a turn: the end-of-turn model's answer, the pause's words and the LLM's
text signal together, as a mixin of :class:`~openrealtime.session.input_buffer.InputAudioBuffer`
(whose state it uses, through :class:`_Buffer`).

At a pause the buffer asks the model (:class:`~openrealtime.session.commands.PredictTurnEnd`, after
the eagerness's ``check_pause_ms``, again every ``recheck_ms``) and the LLM (once the pause's words
are known and read as finished, :mod:`~openrealtime.session.eou_text`), and ends the turn in the
pause when they agree (:meth:`TurnEnding._decide`); finished-looking words alone end it after the
word rule's pause, longer when the model or the LLM doubts them (:meth:`TurnEnding._maybe_end_by_words`).
The VAD's own silence rule only enforces the eagerness's maximum wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.session import eou_text
from openrealtime.session.commands import (
    END_OF_TURN_UNAVAILABLE,
    CancelJob,
    JobFailed,
    PredictTurnEnd,
    TurnEndPredicted,
)
from openrealtime.session.endpointing import Eagerness, EndOfTurnPolicy, looks_complete
from openrealtime.session.eou_text import TextSignal, WordsEndOfTurn
from openrealtime.session.ids import Ids
from openrealtime.session.signals import Output
from openrealtime.session.turns import Turn, TurnTranscriber, ms_to_samples, samples_to_ms, too_long_to_speculate
from openrealtime.session.vad import VadTrack

END_OF_TURN_WINDOW_MS = 8_000  # what the end-of-turn model hears of a turn (Smart Turn: its last 8 s)
# Finished-looking words end a turn after the word rule's pause, but after 2.5 times that when the model
# said the turn goes on (medium: 1.25 s): "I was wondering if you could." and "... to the whole team
# before?" read as finished while Smart Turn gives them 0.02, and at the plain word-rule pause (500 ms)
# they were cut in 5 of 24 clips (bench turns); a finished turn the model misjudges waits 0.75 s more.
DOUBTED_PAUSE_FACTOR = 2.5
# Finished-looking words that Smart Turn doubts but the LLM reads as a whole message (its text signal,
# session/eou_text.py) wait 1.5 times the word rule's pause instead (750 ms at medium): on bench turns'
# 40 clips, interleaved, the turn ends' p90 went from 1.34 to 0.85 s with no clip more cut off.
RESCUED_PAUSE_FACTOR = 1.5
# ... and 0.4 times it (200 ms at medium) where the LLM reads them as a whole message clearly
# (eou_text.CLEAR_ABOVE): the clip ends Smart Turn misjudges, about two in five of bench turns'. At 0.6
# (300 ms, sessions 24-28) these turns ended ~100 ms after the others and their answers waited for it
# (session 29: +369-381 -> +266-281 ms after the last word, no clip more cut off; no mid-sentence pause
# of the set reads that clearly but the sentence complete at its pause, which Smart Turn ends anyway).
CLEAR_PAUSE_FACTOR = 0.4


@dataclass(frozen=True)
class _Question:
    """An end-of-turn question in flight: its job, and the pause it was asked in."""

    job_id: str
    pause_start: int


class _Buffer(Protocol):
    """What of the input buffer the mixin uses."""

    turn: Turn | None
    buffer: SampleBuffer
    _vad: VadTrack
    _words: TurnTranscriber
    _ids: Ids
    _semantic: Eagerness | None  # the word rule's pauses (semantic_vad without a model)
    _end_of_turn: EndOfTurnPolicy | None  # semantic_vad's use of the model
    _model_missing: bool  # the runtime said it has no end-of-turn model: use the word rule
    _question: _Question | None
    _asked_at: int  # pause length (samples) at the last question of the current pause
    _probability: float | None  # the model's latest answer in the current pause
    _text: WordsEndOfTurn  # the LLM's word on the pause's words

    def _end_turn_in_pause(self, turn: Turn) -> list[Output]: ...

    def _maybe_end_semantic_turn(self) -> list[Output]: ...

    def _ask_text(self, turn: Turn) -> list[Output]: ...

    def _decide(self, turn: Turn) -> list[Output]: ...

    def _transcript(self, turn: Turn) -> str | None: ...

    def _maybe_end_by_words(self) -> list[Output]: ...


class TurnEnding:
    """``semantic_vad``'s decision in a pause, for :class:`~openrealtime.session.input_buffer.InputAudioBuffer`."""

    _question: _Question | None  # set by the buffer (see _Buffer)
    _asked_at: int
    _probability: float | None

    def _maybe_end_semantic_turn(self: _Buffer) -> list[Output]:
        """semantic_vad at a pause: ask the end-of-turn model when a question is due, then decide."""
        if self._end_of_turn is None or self._model_missing:
            return self._maybe_end_by_words()
        turn = self.turn
        if turn is None or turn.pause_start is None:
            return []
        out = self._ask_text(turn)
        if self._question is not None:
            return out + self._maybe_end_by_words()  # the words alone may already be due
        policy = self._end_of_turn
        pause = self._vad.position - turn.pause_start
        due_ms = policy.check_pause_ms if not self._asked_at else samples_to_ms(self._asked_at) + policy.recheck_ms
        if samples_to_ms(pause) < due_ms:
            return out + self._decide(turn)
        self._asked_at = pause
        end = self._vad.position
        start = max(turn.start, self.buffer.start, end - ms_to_samples(END_OF_TURN_WINDOW_MS))
        question = PredictTurnEnd(job_id=self._ids.new("job"), item_id=turn.item_id, audio=self.buffer.copy(start, end))
        self._question = _Question(question.job_id, turn.pause_start)
        return [*out, question, *self._maybe_end_by_words()]

    def _ask_text(self: _Buffer, turn: Turn) -> list[Output]:
        """Ask the LLM about the pause's words once they are known and read as finished (only then
        does the text signal decide anything)."""
        words = self._transcript(turn)
        if words is None or not looks_complete(words):
            return []
        assert turn.pause_start is not None  # asked in a pause only
        return list(self._text.ask(turn.item_id, words, samples_to_ms(self._vad.position - turn.pause_start)))

    def _on_answer(self: _Buffer, result: TurnEndPredicted | JobFailed) -> list[Output]:
        """The end-of-turn model's answer for the pause that still goes on (a void one was cancelled)."""
        self._question = None
        turn = self.turn
        if turn is None or self._end_of_turn is None:
            return []
        if isinstance(result, JobFailed):
            # The word rule decides this pause; from now on too if the server has no model at all.
            self._model_missing = result.code == END_OF_TURN_UNAVAILABLE
            return self._maybe_end_by_words()
        self._probability = result.probability
        return self._maybe_end_semantic_turn()  # audio that came in meanwhile may make a recheck due

    def _decide(self: _Buffer, turn: Turn) -> list[Output]:
        """The model and the words together: the model's "complete" ends the turn unless the pause's
        transcript trails off on a function word ("to", "the", "and"); a finished-looking transcript
        also ends it after the word rule's longer pause, as without the model. The model alone, on
        audio that comes through TTS, calls about half of the mid-sentence pauses complete, and
        misses many finished sentences that follow a pause (``bench turns``); the words catch the
        first and the word rule's pause the second."""
        assert self._end_of_turn is not None
        words = self._transcript(turn)
        model_says = self._probability is not None and self._probability >= self._end_of_turn.threshold
        if model_says and words is None and not self._words.enabled:
            return self._end_turn_in_pause(turn)  # no words will come: the model decides alone
        if model_says and words is not None and looks_complete(words):
            text = self._text.signal(words)  # the LLM may veto, or is still asked (a short wait)
            assert turn.pause_start is not None  # decided in a pause only
            waited = samples_to_ms(self._vad.position - turn.pause_start) >= eou_text.WAIT_PAUSE_MS
            if text is not TextSignal.GOES_ON and (text is not TextSignal.PENDING or waited):
                return self._end_turn_in_pause(turn)
        return self._maybe_end_by_words()

    def _transcript(self: _Buffer, turn: Turn) -> str | None:
        """The turn's words up to this pause, once known: the speculative final decode of the whole
        turn, or for a turn too long to decode whole at each pause, its live captions' newest words."""
        if turn.final_result is None and too_long_to_speculate(turn) and turn.heard:
            return " ".join([*turn.captions.frozen, turn.heard])
        return turn.final_result

    def _maybe_end_by_words(self: _Buffer) -> list[Output]:
        """The word rule: end the turn at a pause long enough for words that read as finished."""
        turn = self.turn
        if self._semantic is None or turn is None or turn.pause_start is None:
            return []
        words = self._transcript(turn)
        pause_ms: float = self._semantic.complete_pause_ms
        policy = self._end_of_turn
        if words is None or not looks_complete(words):
            return []  # trailing off mid-sentence (or not known yet): keep listening, up to the eagerness cap
        paused_ms = samples_to_ms(self._vad.position - turn.pause_start)
        text = self._text.signal(words) if policy is not None else TextSignal.ABSENT
        doubted = self._probability is not None and policy is not None and self._probability < policy.threshold
        if text is TextSignal.GOES_ON or (doubted and text not in (TextSignal.ENDS, TextSignal.ENDS_CLEARLY)):
            pause_ms *= DOUBTED_PAUSE_FACTOR  # the model or the LLM says the speaker goes on: wait longer
        elif doubted:  # the model doubts, the LLM reads a whole message
            pause_ms *= CLEAR_PAUSE_FACTOR if text is TextSignal.ENDS_CLEARLY else RESCUED_PAUSE_FACTOR
        if paused_ms < pause_ms:
            return []
        return self._end_turn_in_pause(turn)

    def _drop_question(self: _Buffer) -> list[Output]:
        """The pause is over (speech, a commit, a clear): its question, if in flight, is void."""
        self._asked_at = 0
        self._probability = None
        if self._question is None:
            return []
        job_id, self._question = self._question.job_id, None
        return [CancelJob(job_id)]
