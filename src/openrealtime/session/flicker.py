"""A flicker of the VAD in the end-of-turn pause keeps the pause's words and the answer begun on them.

Silero often calls the closure before a last consonant a pause and its burst speech again
("homewor|k"): the pause's final decode was cancelled and asked again, and the answer begun on its
words restarted (``bench turns --turn-trace``: 100-150 ms lost in 5 of 39 clips). Speech that
resumes in the pause and stops again within ``FLICKER_MS`` is taken for such a flicker: a voice
session keeps the pause's decode (running, or its words) and the answer begun on them, and the next
pause's own decode confirms the words (the session keeps an answer begun on the same words of the
same turn) or replaces them. Longer speech is the speaker going on and drops them, as any speech
did before. The state lives on the :class:`~openrealtime.session.turns.Turn` (``flicker_start``,
``kept_*``); :class:`FlickerKeeper` owns its rules for the turn's
:class:`~openrealtime.session.turns.TurnTranscriber`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from openrealtime.session.frontend import ENGINE_RATE_HZ
from openrealtime.session.signals import Output, TurnGoesOn, TurnMayEnd

if TYPE_CHECKING:
    from openrealtime.session.turns import Turn

MS_PER_S = 1000
# Speech after a pause shorter than this is a flicker (the flickers traced were 2-3 Silero frames).
FLICKER_MS = 200
# ...and the words are kept only when the next pause begins within this long of the pause they were
# decoded at: a pause that began further before the end of the last word decoded fewer of its
# sounds. Offline, tiny.en heard the same words in 36 / 33 / 28 / 23 of the 39 clips cut 32 / 64 /
# 96 / 128 ms before their end ("capital of friend?" for "...France?" at -107 ms, traced); Silero
# calls the pause 45-115 ms after the last sample, so 160 ms between the two pauses is a cut about
# 64 ms before the end.
FLICKER_SPAN_MS = 160


def _samples(ms: int) -> int:
    return ms * ENGINE_RATE_HZ // MS_PER_S


class FlickerKeeper:
    """What a turn keeps of a pause across a flicker, and when it lets go.

    Args:
        cancel: Cancels a decode job (the transcriber's own bookkeeping), returning its outputs.
        drop: Drops the turn's speculation (the transcriber's ``drop_speculation``).
        enabled: Whether anything is kept: a voice session's answer is begun on the pause's words; a
            transcription session has no answer to keep and drops its decode at once.
    """

    def __init__(
        self, *, cancel: Callable[[str], list[Output]], drop: Callable[[Turn], list[Output]], enabled: bool
    ) -> None:
        self._cancel = cancel
        self._drop = drop
        self._enabled = enabled

    def speech_resumed(self, turn: Turn, sample: int) -> list[Output]:
        """Speech came back in a pause at ``sample``: keep the pause's decode and words a moment (or,
        with nothing to keep, drop the speculation at once)."""
        held = (turn.speculative_job, turn.final_result, turn.kept_job, turn.kept_words)
        if not self._enabled or all(h is None for h in held):
            return self._drop(turn)
        out: list[Output] = []
        if turn.final_result is not None:  # this pause's words are known: they are what is kept
            out += self.forget(turn)
            turn.kept_words, turn.kept_from = turn.final_result, turn.speculative_end
        elif turn.kept_words is not None or turn.speculative_job is None:
            out += self._cancel_if(turn.speculative_job)  # an earlier flicker's words (or decode) stay kept
        else:  # this pause's decode is running: it goes on, as the kept one
            out += self._cancel_if(turn.kept_job)
            turn.kept_job, turn.kept_from = turn.speculative_job, turn.speculative_end
        turn.speculative_job, turn.final_result, turn.final_logprobs = None, None, None
        turn.flicker_start = sample
        return out

    def speech_goes_on(self, turn: Turn, position: int) -> list[Output]:
        """The turn is spoken up to ``position``: speech that outlasts a flicker drops what was kept."""
        if turn.flicker_start is None or position - turn.flicker_start <= _samples(FLICKER_MS):
            return []
        turn.flicker_start = None
        return self._drop(turn)

    def paused_again(self, turn: Turn, sample: int) -> list[Output]:
        """A pause began at ``sample``, within ``FLICKER_MS`` of the flicker: its own decode will check
        the kept words, if it began within ``FLICKER_SPAN_MS`` of their pause (else they are dropped)."""
        turn.flicker_start = None
        kept = turn.kept_job is not None or turn.kept_words is not None
        if kept and sample - turn.kept_from > _samples(FLICKER_SPAN_MS):
            return self._drop(turn)
        return []

    def on_kept(self, turn: Turn, text: str) -> list[Output]:
        """The kept decode's words: an answer may begin on them (the next pause's words confirm it)."""
        turn.kept_job = None
        if turn.committed:
            return []
        turn.kept_words = text
        return [TurnMayEnd(turn.item_id, text)]

    def before_commit(self, turn: Turn) -> list[Output]:
        """The turn is about to be committed: an answer begun on kept words that the last pause's
        decode has not confirmed is dropped (the commit makes it afresh from the final)."""
        unconfirmed = turn.kept_words is not None and turn.final_result is None
        out = self.forget(turn)
        return [*out, TurnGoesOn(turn.item_id)] if unconfirmed else out

    def forget(self, turn: Turn) -> list[Output]:
        """Let go of what was kept (the kept decode is cancelled)."""
        out = self._cancel_if(turn.kept_job)
        turn.kept_job, turn.kept_words, turn.flicker_start = None, None, None
        return out

    def _cancel_if(self, job_id: str | None) -> list[Output]:
        return self._cancel(job_id) if job_id is not None else []
