"""The words of each turn: live captions while it is spoken, a final decode started in the pause.

A :class:`Turn` is one future user item of the input buffer (its state machine is in
:mod:`~openrealtime.session.states`). :class:`TurnTranscriber` asks for its decodes and turns their
results into events: while the speaker talks, the growing turn is decoded again and again and only
the words two successive decodes agree on are sent (:mod:`~openrealtime.session.captions`), so deltas
are append-only; at the first pause the final decode starts speculatively, and it is kept as the
final if the turn ends at that pause. Where the decode starts at the pause's first frame (a voice
session, a short silence rule), it starts sooner still, when the speech goes quiet
(:mod:`~openrealtime.session.quiet`, ~30 ms before Silero calls the pause), and the pause takes it.
Live captions of long turns stay cheap: once the window passes
``WINDOW_LIMIT_S``, its start moves to a segment end already captioned.

The final decode is always of the whole turn, with the session's options, whatever the captions
did: the transcript is what an offline decode of the same audio says, under any load (issue 14: live
WER 7.7 % against 5.6 % offline, and "finance team" heard as "fine and steam" in every stream at 4
concurrent streams, because the transcript kept the words the captions had sent). The engine decodes
a long turn in windows (:func:`~openrealtime.runtime.engines.audio_windows`) and keeps the windows it
decoded, so a turn's repeated finals cost only its last window. The captions' last delta appends the
final's words after those already sent; where the final rewrote a word already shown, the completed
transcript carries the correction (deltas cannot take words back).

When the session's ``include`` asks for ``item.input_audio_transcription.logprobs``, its decodes
return token log-probabilities, and each delta carries those of exactly its words, the completed
event those of the whole transcript (:mod:`~openrealtime.session.logprobs`); otherwise the decodes
skip them and nothing changes on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.contracts import TranscribeOptions
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import AudioInput, ServerVad
from openrealtime.session.captions import CaptionTracker
from openrealtime.session.commands import CancelJob, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.flicker import FlickerKeeper
from openrealtime.session.frontend import ENGINE_RATE_HZ
from openrealtime.session.ids import Ids
from openrealtime.session.logprobs import WordLogprobs, wire_logprobs, word_logprobs
from openrealtime.session.signals import Output, TranscriptFinal, TurnGoesOn, TurnHeard, TurnMayEnd
from openrealtime.session.states import TurnState, advance

MS_PER_S = 1000
# New audio needed before the next live-caption decode, once words are showing. 300 ms, not 200: one
# stream's CPU per audio second 0.38 -> 0.29 (issue 14's bound is 0.3, for density), word lag p50 / p95
# 0.16 / 0.48 -> 0.35 / 0.82 s on the bench's sentences (first words unchanged: FIRST_CAPTION_STEP_MS).
PARTIAL_STEP_MS = 300
FIRST_PARTIAL_MS = 200  # speech (after its onset) needed before the first one
# Until a turn shows its first words, decode after every 100 ms chunk: a word is shown once two
# successive decodes agree on it, and on a hard onset (tiny.en hears "She bought" as "Cheeba",
# "Cheeb up", "Cheebop") two agreeing guesses come sooner when they are 100 ms apart than 200.
# It costs two or three more decodes a turn; the ASR queue serves them before later partials.
FIRST_CAPTION_STEP_MS = 100
# The input's resampler holds a little back (a few ms; soxr's, before, handed out 92 or 122 ms for each
# 100 ms sent), so a step is due this much early: an exact threshold would often wait one more chunk
# and stretch 200 ms to 300.
RESAMPLER_SLACK_MS = 20
SPECULATE_AFTER_MS = 60  # pause after which the final decode starts, before the turn has ended
# A decode begun on the quiet (session/quiet.py) is the VAD's pause's own when that pause begins no
# later than this after the decode's audio ends (a Silero frame; the sound between was quiet). Over
# the 86 pauses of bench turns' clips (offline, 20 ms chunks) the pause began 23 ms *before* the
# early decode's audio ended (p50; p90 7 ms before), and the two decodes' words were the same in all.
EARLY_SPAN_MS = 32
# A transcription session's speculative final starts this long before server_vad's silence ends the
# turn (at least: see FINAL_LATENCY_MARGIN), so the transcript is still ready at the end.
FINAL_DECODE_LEAD_MS = 250
# ...or this many times as long before it as the session's last final decode took, when that is more
# (a slower model, a loaded machine): measured in audio, the input's end when it came back against
# when it was asked for.
FINAL_LATENCY_MARGIN = 1.5
# Only turns up to this long: the final decodes the whole turn, and at every short pause of a long
# passage that took the cores its live captions needed (word lag p95 4.9 s over 35 s of speech); a
# longer turn's final starts at its commit, with its earlier windows already decoded.
SPECULATE_UP_TO_MS = 10_000
# Caption window beyond which its start moves to a captioned segment end. Not prompted with the words
# before it: with a prompt, tiny.en wrote a whole window as one segment, so it never slid again.
WINDOW_LIMIT_S = 8.0
SEGMENT_KEEP_S = 2.0  # never freeze the window closer than this to its end


def samples_to_ms(samples: int) -> int:
    return samples * MS_PER_S // ENGINE_RATE_HZ


def ms_to_samples(ms: int) -> int:
    return ms * ENGINE_RATE_HZ // MS_PER_S


@dataclass
class Turn:
    """The audio of one future user item, from its start until it is committed and transcribed."""

    item_id: str
    start: int
    window_start: int
    state: TurnState = TurnState.OPEN
    onset: int | None = None  # where speech first began in this turn
    pause_start: int | None = None  # start of the current pause (PAUSED)
    # Decodes 100-200 ms apart often end on the same cut word: hold it (see CaptionTracker).
    captions: CaptionTracker = field(default_factory=lambda: CaptionTracker(hold_cut_word=True))
    partial_job: str | None = None
    partial_end: int = 0
    speculative_job: str | None = None
    speculative_end: int = 0
    early_end: int | None = None  # the speculative decode was begun on the quiet, before the VAD's pause
    final_job: str | None = None
    final_result: str | None = None  # a speculative final's text, waiting for the commit
    final_logprobs: list[WordLogprobs] | None = None  # and its words' tokens
    duration_samples: int = 0
    heard: str = ""  # the newest live decode, whole (the captions send only its agreed words)
    settled: str = ""  # its words but the last (which may still change), as last told (TurnHeard)
    # Across a flicker (session/flicker.py): where speech resumed, and the earlier pause's decode kept, running
    # (kept_job) or done (kept_words: an answer may have begun on them), until the next pause's decode
    # confirms or replaces them.
    flicker_start: int | None = None
    kept_from: int = 0  # the start of the pause they were decoded at
    kept_job: str | None = None
    kept_words: str | None = None
    # Speech over the assistant is being judged (session/bargein.py): its decodes go first, 200 ms apart.
    urgent: bool = False

    @property
    def saw_speech(self) -> bool:
        return self.onset is not None

    @property
    def committed(self) -> bool:
        return self.state in (TurnState.COMMITTED, TurnState.TRANSCRIBED)

    def to(self, state: TurnState) -> None:
        self.state = advance(self.state, state)


def too_long_to_speculate(turn: Turn) -> bool:
    """Whether the turn's final waits for its commit instead of starting at this pause."""
    return turn.pause_start is not None and turn.pause_start - turn.start > ms_to_samples(SPECULATE_UP_TO_MS)


class EarlyDecode:
    """A turn's pause decode begun when the speech goes quiet (:mod:`~openrealtime.session.quiet`),
    before the VAD calls the pause, for its :class:`TurnTranscriber`: the pause takes it
    (:meth:`adopt`), or speech that comes back first drops it (:meth:`drop`).

    Args:
        start: Starts the turn's speculative decode up to the input's end (the transcriber's
            bookkeeping), or returns ``None`` where the session would not start one at a pause now.
        cancel: Cancels a decode job.
        forget: Lets go of what a flicker kept (:meth:`FlickerKeeper.forget`).
    """

    def __init__(
        self,
        *,
        start: Callable[[Turn], Transcribe | None],
        cancel: Callable[[str], list[Output]],
        forget: Callable[[Turn], list[Output]],
    ) -> None:
        self._start = start
        self._cancel = cancel
        self._forget = forget

    def begin(self, turn: Turn) -> list[Output]:
        """The speech has gone quiet and the VAD has not called the pause yet: start the pause's
        final decode on the audio so far."""
        if turn.state is not TurnState.SPEAKING or turn.speculative_job is not None or turn.flicker_start is not None:
            return []
        if turn.kept_job is not None or turn.kept_words is not None:
            return []
        command = self._start(turn)
        if command is None:
            return []
        turn.early_end = turn.speculative_end
        return [command]

    def adopt(self, turn: Turn) -> list[Output]:
        """The VAD's pause began at ``turn.pause_start``: a decode begun on the quiet just before is
        this pause's (its words, if known, may end the turn now); one that ended too far before it
        missed some sound, and is dropped."""
        end = turn.early_end
        if end is None or turn.pause_start is None:
            return []
        if turn.pause_start - end > ms_to_samples(EARLY_SPAN_MS):
            return self.drop(turn)
        turn.early_end, turn.speculative_end = None, turn.pause_start
        if turn.final_result is None:
            return []
        return [*self._forget(turn), TurnMayEnd(turn.item_id, turn.final_result)]

    def drop(self, turn: Turn) -> list[Output]:
        """Speech came back before the VAD called a pause: the decode begun on the quiet is void
        (nothing was told of its words)."""
        if turn.early_end is None:
            return []
        turn.early_end, turn.final_result, turn.final_logprobs = None, None, None
        job_id, turn.speculative_job = turn.speculative_job, None
        return self._cancel(job_id) if job_id is not None else []


@dataclass(frozen=True)
class _Job:
    turn: Turn
    kind: str  # "partial" | "speculative" | "final"
    audio_start: int
    audio_end: int
    timestamps: bool
    asked_at: int  # the input's end when it was asked for: its latency is measured in audio


class TurnTranscriber:
    """Decodes of turns and what their results become; every method returns its outputs in order.

    Args:
        buffer: The input buffer's 16 kHz audio (read only).
        ids: The session's id source.
        always: Transcribe every turn even when the client asked for no transcription events (a
            realtime session needs the words for its LLM).
        partial_step_ms: New audio between two live-caption decodes once words are showing.
    """

    def __init__(self, buffer: SampleBuffer, ids: Ids, *, always: bool, partial_step_ms: int) -> None:
        self._buffer = buffer
        self._ids = ids
        self._always = always
        self._partial_step_ms = partial_step_ms
        self._jobs: dict[str, _Job] = {}
        self._config = AudioInput()
        self._logprobs = False
        self._final_latency_ms = 0  # how long the last final decode took, in audio (see FINAL_LATENCY_MARGIN)
        self.flicker = FlickerKeeper(cancel=self._cancel, drop=self.drop_speculation, enabled=always)
        self.early = EarlyDecode(start=self._start_early, cancel=self._cancel, forget=self.flicker.forget)

    def configure(self, config: AudioInput, *, logprobs: bool = False) -> None:
        """Take the session's ``audio.input``, and whether its ``include`` asks for logprobs."""
        self._config = config
        self._logprobs = logprobs

    @property
    def enabled(self) -> bool:
        return self._always or self._config.transcription is not None

    @property
    def emits(self) -> bool:
        """Whether the client is sent transcription events."""
        return self._config.transcription is not None

    def owns(self, job_id: str) -> bool:
        return job_id in self._jobs

    @property
    def sends_logprobs(self) -> bool:
        """Whether transcription events carry ``logprobs`` (so decodes must return them)."""
        return self.emits and self._logprobs

    def _options(self, *, timestamps: bool, final: bool) -> TranscribeOptions:
        t = self._config.transcription
        return TranscribeOptions(
            language=t.language if t else None,
            prompt=t.prompt if t else None,
            timestamps=timestamps,
            logprobs=self.sends_logprobs,
            final=final,
        )

    def _wire(self, turn: Turn, first_word: int) -> list[dict[str, Any]] | None:
        """The ``logprobs`` of the turn's sent words from ``first_word`` on (``None``: not asked
        for, or some word's tokens unknown, as when ``include`` changed during the turn)."""
        if not self.sends_logprobs:
            return None
        words = turn.captions.sent_logprobs[first_word:]
        known = [w for w in words if w is not None]
        if len(known) < len(words):
            return None
        return wire_logprobs(known, space_before=first_word > 0)

    def _request(self, turn: Turn, kind: str, start: int, end: int, *, timestamps: bool = False) -> Transcribe:
        job_id = self._ids.new("job")
        self._jobs[job_id] = _Job(turn, kind, start, end, timestamps, self._buffer.end)
        return Transcribe(
            job_id=job_id,
            item_id=turn.item_id,
            audio=self._buffer.copy(start, end),
            options=self._options(timestamps=timestamps, final=kind != "partial"),
            final=kind != "partial",
            first_caption=kind == "partial" and self._awaits_first_words(turn),
        )

    def _cancel(self, job_id: str) -> list[Output]:
        self._jobs.pop(job_id, None)
        return [CancelJob(job_id)]

    def _awaits_first_words(self, turn: Turn) -> bool:
        """The client is shown this turn's captions and has seen none of its words yet.

        Only then is a partial urgent: a realtime session that sends no transcription events
        decodes partials for its own use, at the normal step and priority, unless the turn is speech
        over the assistant that a barge-in waits to judge.
        """
        return turn.urgent or (self.emits and not turn.captions.sent)

    # --- while the turn is spoken ------------------------------------------------------------------

    def schedule_partial(self, turn: Turn) -> list[Output]:
        """The next live-caption decode, once enough new speech has come in."""
        if not self.enabled or turn.state is not TurnState.SPEAKING:
            return []
        if turn.partial_job is not None or turn.speculative_job is not None or turn.flicker_start is not None:
            return []
        end = self._buffer.end
        if turn.partial_end <= turn.start:  # no partial yet: wait for a little speech, not the padding
            due = (turn.onset if turn.onset is not None else turn.start) + ms_to_samples(FIRST_PARTIAL_MS)
        else:
            step_ms = FIRST_CAPTION_STEP_MS if self._awaits_first_words(turn) else self._partial_step_ms
            if turn.urgent:
                step_ms = min(PARTIAL_STEP_MS, self._partial_step_ms)
            due = turn.partial_end + ms_to_samples(step_ms)
        if end + ms_to_samples(RESAMPLER_SLACK_MS) < due:
            return []
        long_window = (end - turn.window_start) / ENGINE_RATE_HZ > WINDOW_LIMIT_S
        command = self._request(turn, "partial", turn.window_start, end, timestamps=long_window)
        turn.partial_job, turn.partial_end = command.job_id, end
        return [command]

    def speculate(self, turn: Turn, *, vad_enabled: bool) -> list[Output]:
        """The turn is in a pause: start the final decode before the turn ends, once the pause is long
        enough (see :meth:`_speculate_after_ms`); at most once a pause."""
        if not self.enabled or not vad_enabled or turn.pause_start is None:
            return []
        if turn.speculative_job is not None or turn.speculative_end == turn.pause_start:
            return []  # this pause's final decode is running, done, or failed
        after_ms = self._speculate_after_ms()
        if after_ms is None or self._buffer.end - turn.pause_start < ms_to_samples(after_ms):
            return []
        if too_long_to_speculate(turn):
            return []  # a long turn's final waits for the commit (see SPECULATE_UP_TO_MS)
        command = self._request(turn, "speculative", turn.start, turn.pause_start)
        turn.speculative_end, turn.speculative_job = turn.pause_start, command.job_id
        return [command]

    def _start_early(self, turn: Turn) -> Transcribe | None:
        """The turn's speculative decode up to now, for :class:`EarlyDecode`: only in a session that
        starts it at the pause's first frame anyway, and for a turn it would decode at a pause."""
        end = self._buffer.end
        if not self.enabled or turn.onset is None or self._speculate_after_ms() != 0:
            return None
        if end - turn.onset < ms_to_samples(FIRST_PARTIAL_MS) or end - turn.start > ms_to_samples(SPECULATE_UP_TO_MS):
            return None
        command = self._request(turn, "speculative", turn.start, end)
        turn.speculative_end, turn.speculative_job = end, command.job_id
        return command

    def _speculate_after_ms(self) -> int | None:
        """How long a pause must last before its final decode starts (``None``: never).

        A voice session starts it at once: its answer is built on those words, so they must be ready
        the moment the turn ends. ``semantic_vad`` too: it judges the pause by them. A transcription
        session under ``server_vad`` only needs its final ready when the silence ends the turn, so it
        starts ``FINAL_DECODE_LEAD_MS`` before that, or longer when its last final decode took longer:
        the short pauses inside a sentence (commas, breaths) then cost no decode each, where a decode
        of the whole turn at every one of them cost a fifth of the stream's CPU (issue 14).
        """
        td = self._config.turn_detection
        if not isinstance(td, ServerVad):
            return 0
        if td.silence_duration_ms <= SPECULATE_AFTER_MS:
            return None  # the turn ends so soon that the real final decode is just as early
        if self._always:
            return 0
        lead_ms = max(FINAL_DECODE_LEAD_MS, FINAL_LATENCY_MARGIN * self._final_latency_ms)
        return max(0, math.floor(td.silence_duration_ms - lead_ms))

    def drop_speculation(self, turn: Turn) -> list[Output]:
        """The speaker went on (or the turn was cleared): the speculative final is void."""
        out = self.early.drop(turn)
        if turn.speculative_job is not None:
            out += self._cancel(turn.speculative_job)
            turn.speculative_job = None
        signalled = turn.final_result is not None or turn.kept_words is not None
        out += self.flicker.forget(turn)
        if signalled:
            out.append(TurnGoesOn(turn.item_id))
        turn.final_result = None
        turn.final_logprobs = None
        return out

    def cancel_partial(self, turn: Turn) -> list[Output]:
        if turn.partial_job is None:
            return []
        job_id, turn.partial_job = turn.partial_job, None
        return self._cancel(job_id)

    # --- at the commit -----------------------------------------------------------------------------

    def finalize(self, turn: Turn, *, speech_end: int) -> list[Output]:
        """The turn was committed with its speech ending at ``speech_end``: settle its transcript."""
        if not self.enabled:
            return []
        out: list[Output] = []
        if turn.speculative_job is not None and turn.speculative_end == speech_end:
            turn.final_job, turn.speculative_job = turn.speculative_job, None
            asked = self._jobs.pop(turn.final_job, None)
            asked_at = asked.asked_at if asked is not None else self._buffer.end
            self._jobs[turn.final_job] = _Job(turn, "final", turn.start, speech_end, False, asked_at)
        else:
            out += self.drop_speculation(turn)
            if turn.saw_speech:
                command = self._request(turn, "final", turn.start, speech_end)
                turn.final_job = command.job_id
                out.append(command)
        if not turn.saw_speech:
            out += self._complete(turn, "")  # silence: nothing to decode (and Whisper would invent words)
        elif turn.final_result is not None:
            out += self._complete(turn, turn.final_result, turn.final_logprobs)
        return out

    # --- results -----------------------------------------------------------------------------------

    def on_result(self, result: TranscriptReady | JobFailed) -> list[Output]:
        job = self._jobs.pop(result.job_id, None)
        if job is None:
            return []  # late result of a cancelled or superseded job: dropped by id
        turn = job.turn
        if isinstance(result, JobFailed):
            return self._on_failure(job, result)
        text = result.transcript.text
        logprobs = word_logprobs(result.transcript) if self.sends_logprobs else None
        if job.kind == "partial":
            turn.partial_job = None
            turn.heard = text
            out: list[Output] = []
            settled = " ".join(text.split()[:-1])
            if settled and settled != turn.settled:
                turn.settled = settled
                out.append(TurnHeard(turn.item_id, settled))
            sent = len(turn.captions.sent)
            delta = turn.captions.partial(text, logprobs)
            if delta and self.emits:
                out.append(se.TranscriptionDelta(item_id=turn.item_id, delta=delta, logprobs=self._wire(turn, sent)))
            if job.timestamps:
                self._slide_window(turn, job, result)
            return out + self.schedule_partial(turn)
        self._final_latency_ms = samples_to_ms(self._buffer.end - job.asked_at)
        if result.job_id == turn.kept_job:
            return self.flicker.on_kept(turn, text)
        if not turn.committed:
            turn.final_result = text  # speculative, waiting for the turn to end
            turn.final_logprobs = logprobs
            if turn.early_end is not None:
                return []  # begun on the quiet: told when the VAD's pause takes it (EarlyDecode.adopt)
            # What was kept across a flicker is done with: where these are its words, the session
            # keeps the answer begun on them (it compares the words); where not, this replaces it.
            return [*self.flicker.forget(turn), TurnMayEnd(turn.item_id, text)]
        return self._complete(turn, text, logprobs)

    def _on_failure(self, job: _Job, result: JobFailed) -> list[Output]:
        turn = job.turn
        if job.kind == "partial":
            turn.partial_job = None
            return self.schedule_partial(turn)
        if job.kind == "speculative" and not turn.committed:
            if result.job_id == turn.kept_job:
                turn.kept_job = None
            else:
                turn.speculative_job = None
            return []
        turn.to(TurnState.TRANSCRIBED)
        out: list[Output] = [TranscriptFinal(turn.item_id, None)]
        if self.emits:
            error = {"type": "server_error", "code": result.code, "message": result.message, "param": None}
            out.append(se.TranscriptionFailed(item_id=turn.item_id, error=error))
        return out

    def _slide_window(self, turn: Turn, job: _Job, result: TranscriptReady) -> None:
        """Freeze all but the tail of a long window so decodes stay short however long the turn."""
        segments = result.transcript.segments
        keep_from = (job.audio_end - job.audio_start) / ENGINE_RATE_HZ - SEGMENT_KEEP_S
        done = [s for s in segments[:-1] if s.end_s <= keep_from]
        if not done:
            return
        words = " ".join(s.text for s in done).split()
        if turn.captions.freeze(words):
            turn.window_start = job.audio_start + int(done[-1].end_s * ENGINE_RATE_HZ)

    def _complete(self, turn: Turn, final_text: str, logprobs: list[WordLogprobs] | None = None) -> list[Output]:
        turn.to(TurnState.TRANSCRIBED)
        out: list[Output] = []
        sent = len(turn.captions.sent)
        delta = turn.captions.final(final_text, logprobs)
        transcript = " ".join(final_text.split())
        if self.emits:
            if delta:
                out.append(se.TranscriptionDelta(item_id=turn.item_id, delta=delta, logprobs=self._wire(turn, sent)))
            seconds = max(1, math.ceil(turn.duration_samples / ENGINE_RATE_HZ))
            whole = None
            if self.sends_logprobs and (logprobs is not None or not transcript):  # a silent turn: none
                whole = wire_logprobs(logprobs or [], space_before=False)
            out.append(
                se.TranscriptionCompleted(
                    item_id=turn.item_id,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": seconds},
                    logprobs=whole,
                )
            )
        out.append(TranscriptFinal(turn.item_id, transcript))
        return out
