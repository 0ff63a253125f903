"""Barge-in that knows a backchannel from an interruption (issue 13), sans-I/O.

OpenAI's ``interrupt_response: true`` cancels the answer the moment ``speech_started`` is sent: an
"mm-hm", a cough or a door slam cuts the assistant off as surely as "wait, stop". That is the
``immediate`` mode, kept exactly as documented for strict clients: the default on WebSockets.

The ``adaptive`` mode (the default on WebRTC calls; the server's ``--barge-in``, or a session's
extension field ``audio.input.turn_detection.barge_in``) decides from how long the speech lasts and
what the live transcript says. Where the server plays the audio (a WebRTC call) it holds the
playback at once, so a real interruption is silenced as fast as before, and lets it go on from the
very sample it stopped at when the speech turns out to be a backchannel or a noise (LiveKit's "false
interruption" resume); only an interruption cancels the answer and clears what was queued. Over a
WebSocket the client plays the audio: the cancel comes when the speech is judged an interruption,
and a backchannel cancels nothing and gets no answer of its own. A session that named ``barge_in``
itself also gets each verdict as our ``input_audio_buffer.speech_judged`` event, so a client can
pause its player at ``speech_started`` and resume or clear it then (client/turns.py does).

:func:`judge` is the rule; :class:`BargeIn` holds the one judgement in progress.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from openrealtime.session.commands import HoldPlayback
from openrealtime.session.frontend import ENGINE_RATE_HZ
from openrealtime.session.signals import Output
from openrealtime.session.turns import Turn

BargeInMode = Literal["immediate", "adaptive"]
BARGE_IN_MODES: tuple[BargeInMode, ...] = ("immediate", "adaptive")

# What a listener says to show they follow, not to take the turn (English; a word outside these in a
# transcript makes the speech a candidate interruption). Phrases go first, as whole phrases.
BACKCHANNEL_PHRASES = (
    "i see",
    "got it",
    "i know",
    "that's right",
    "thats right",
    "of course",
    "makes sense",
    "sounds good",
    "all right",
    "go on",
    "thank you",
    "uh huh",
    "mm hm",
    "mm hmm",
)
BACKCHANNEL_WORDS = frozenset(
    [
        "mm",
        "mhm",
        "mmhm",
        "mmhmm",
        "hm",
        "hmm",
        "hmmm",
        "uh",
        "um",
        "uhm",
        "ah",
        "aha",
        "oh",
        "ooh",
        "ha",
        "haha",
        "huh",
        "yeah",
        "yea",
        "yes",
        "yep",
        "yup",
        "ya",
        "right",
        "okay",
        "ok",
        "k",
        "alright",
        "sure",
        "cool",
        "nice",
        "great",
        "good",
        "wow",
        "really",
        "true",
        "exactly",
        "totally",
        "indeed",
        "absolutely",
        "definitely",
        "interesting",
        "fine",
        "thanks",
        "oops",
        "whoa",
    ]
)
# Words Whisper writes for a cough, a breath or a noise it cannot read (besides bracketed notes such
# as "(coughs)" or "[NOISE]", which are dropped whole).
NOISE_WORDS = frozenset({"you", "cough", "coughs", "coughing", "sigh", "sighs", "laughs", "laughing", "bye"})
# Words that take the turn whatever else is said: the listener wants the assistant to stop now.
STOP_WORDS = frozenset(
    {"stop", "wait", "hold", "hang", "pause", "sorry", "excuse", "actually", "no", "nope", "what", "pardon"}
)

_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|\*[^*]*\*|<[^>]*>|♪[^♪]*♪?")
_NOT_WORD = re.compile(r"[^\w' ]+")
_DASH = re.compile(r"[-‐‑–—]")

# Speech shorter than this interrupts only with a stop word. A backchannel is short, and Whisper tiny.en
# hears words in a hum: piper's 0.48 s "Mm-hmm" comes back as "in my mom", "NMM.", "cinema." or "in a
# month." (bench turns part 2's probes). The VAD's onset-to-pause span of a 0.6 s backchannel is about
# this long. Whisper's own confidence does not tell a hum from words: over those probes' growing
# decodes (3 voices, twice each) the hums' ("Mm-hmm", "Uh-huh") had avg_logprob -2.11 to -0.49 and
# no_speech_prob 0.02 to 0.79, the spoken backchannels' -1.08 to -0.14 and 0.01 to 0.78.
SHORT_SPEECH_MS = 700
WORDLESS_MAX_MS = 2000  # speech this long interrupts even when no word could be read (ASR behind)
BACKCHANNEL_MAX_MS = 2500  # a run of backchannels this long is taking the turn


class Verdict(enum.Enum):
    INTERRUPTION = "interruption"  # cancel the answer, clear what is queued
    NOT_AN_INTERRUPTION = "not_an_interruption"  # resume the answer where it was held
    UNDECIDED = "undecided"  # hear more


def barge_in_mode(value: str, *, call: bool = False) -> BargeInMode:
    """The server setting ``--barge-in``, checked, for a session on a WebRTC call or not (``call``).

    ``auto`` (the default) is per door: ``adaptive`` on a call, where the server plays the answer and
    holds it while it judges, so nothing is lost either way; ``immediate`` (OpenAI's) on a WebSocket,
    where the client plays it and a strict client expects the cancel at ``speech_started``.
    """
    if value == "auto":
        return "adaptive" if call else "immediate"
    for mode in BARGE_IN_MODES:
        if value == mode:
            return mode
    raise ValueError(f"barge_in must be one of auto, {', '.join(BARGE_IN_MODES)}, got {value!r}")


def words_of(text: str) -> list[str]:
    """The words of a transcript, lower case, bracketed notes and punctuation gone; "mm-hm" is "mm hm"."""
    text = _BRACKETED.sub(" ", text.lower())
    text = _DASH.sub(" ", text)
    return [w.strip("'") for w in _NOT_WORD.sub(" ", text).split() if w.strip("'")]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that are neither backchannels nor Whisper's words for a noise."""
    joined = f" {' '.join(words_of(text))} "
    for phrase in BACKCHANNEL_PHRASES:
        joined = joined.replace(f" {phrase} ", " ")
    return [w for w in joined.split() if w not in BACKCHANNEL_WORDS and w not in NOISE_WORDS]


def stop_words(text: str) -> set[str]:
    """The stop words of ``text`` (those of its words that take the turn whatever else is said)."""
    return {word for word in content_words(text) if word in STOP_WORDS}


def judge(speech_ms: int, text: str, *, final: bool, earlier: str = "") -> Verdict:
    """Is speech over the assistant, ``speech_ms`` long so far, that reads ``text``, an interruption?

    ``final``: the speech is over (its pause or its commit) and ``text`` is its final transcript, so
    anything short of an interruption is not one. ``earlier``: the live decode before ``text``. A stop
    word interrupts at once in a final transcript, but live only when the decode before heard one
    too: Whisper reads a hum as different words at each decode of its growing audio ("M.", "Mm.",
    "MMI", "And I'm not."), while a word that was said stays.
    """
    content = content_words(text)
    if stop_words(text) and (final or stop_words(earlier)):
        return Verdict.INTERRUPTION
    if content and speech_ms >= SHORT_SPEECH_MS:
        return Verdict.INTERRUPTION
    if speech_ms >= (BACKCHANNEL_MAX_MS if words_of(text) else WORDLESS_MAX_MS):
        return Verdict.INTERRUPTION
    return Verdict.NOT_AN_INTERRUPTION if final else Verdict.UNDECIDED


@dataclass
class Judgement:
    """Speech over the assistant, not yet judged."""

    item_id: str  # the user turn it belongs to
    held: bool  # the server's playback was held for it
    speech_ms: int = 0
    committed: bool = False  # its turn was committed: only its final transcript decides now
    heard: str = ""  # its newest live decode
    earlier: str = ""  # the live decode before that


class BargeIn:
    """The judgement in progress of one session (at most one: one user turn at a time)."""

    def __init__(self) -> None:
        self.pending: Judgement | None = None
        self.dismissed: str | None = None  # the turn last judged not an interruption

    def judging(self, item_id: str) -> bool:
        return self.pending is not None and self.pending.item_id == item_id

    def begin(self, item_id: str, *, hold: bool) -> list[Output]:
        """Speech began over the assistant: hold its playback if the server plays it."""
        self.pending = Judgement(item_id, held=hold)
        self.dismissed = None
        return [HoldPlayback(True)] if hold else []

    def judge_turn(self, turn: Turn, position: int) -> Verdict:
        """Judge the pending speech, ``turn``, at input position ``position``: its newest decode, or in a
        pause its speculative final, as the last word."""
        assert self.pending is not None
        pending = self.pending
        if turn.heard != pending.heard:  # a new live decode
            pending.earlier, pending.heard = pending.heard, turn.heard
        pending.speech_ms = speech_ms(turn.onset, turn.pause_start, position, ENGINE_RATE_HZ)
        paused = turn.pause_start is not None and turn.final_result is not None
        text = turn.final_result if paused and turn.final_result is not None else turn.heard
        return judge(pending.speech_ms, text, final=paused, earlier=pending.earlier)

    def interrupted(self) -> Judgement | None:
        """The speech was judged an interruption: the judgement ends (the caller cancels and clears)."""
        pending, self.pending = self.pending, None
        return pending

    def dismiss(self) -> list[Output]:
        """Not an interruption: the held playback goes on from where it stopped."""
        pending, self.pending = self.pending, None
        if pending is None:
            return []
        self.dismissed = pending.item_id
        return [HoldPlayback(False)] if pending.held else []


def speech_ms(onset: int | None, pause_start: int | None, position: int, rate_hz: int) -> int:
    """How long a turn's speech has lasted: from its onset to its pause, or to ``position`` (samples)."""
    if onset is None:
        return 0
    end = pause_start if pause_start is not None else position
    return max(0, end - onset) * 1000 // rate_hz
