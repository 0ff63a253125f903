"""Live speech to stable source text in clause-sized pieces: the front half of simultaneous translation.

Speech is found by VAD. While an utterance lasts, its growing audio is decoded again and again; a word
is *stable* once two successive decodes agree on it and on everything before it (local agreement, see
:mod:`openrealtime.session.captions`) and a later word follows it (Whisper often cuts the last word of a
window short, and ends every window with a full stop whether the sentence ends there or not). Stable
words go out at once as source-transcript deltas, and leave as :class:`~openrealtime.session.pieces.Piece` s
of about a clause, cut where :func:`~openrealtime.session.pieces.piece_cut` finds a clause boundary; at a
**pause** (``PAUSE_MS`` of VAD silence) the utterance ends and its final decode settles the rest.

Decode windows are bounded: an utterance that runs ``WINDOW_LIMIT_MS`` without a pause is ended at its
quietest moment (the likeliest gap between two words) and speech goes on in a new utterance, so no
decode ever covers more than a few seconds and long speech cannot build up lag. Outputs leave in
utterance order even when a later utterance's decodes come back first. Positions are absolute sample
indices at 16 kHz; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript, VadModel
from openrealtime.session.captions import CaptionTracker
from openrealtime.session.commands import CancelJob, Command, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.ids import Ids
from openrealtime.session.pieces import Piece, SourceCase, SourceOutput, piece_cut
from openrealtime.session.states import UtteranceState, advance
from openrealtime.session.vad import SilenceStart, SpeechEnd, SpeechResumed, SpeechStart, VadEvent, VadTrack

ENGINE_RATE_HZ = 16_000
MS_PER_S = 1000
VAD_THRESHOLD = 0.5
PAUSE_MS = 300  # silence that ends an utterance (sentence gaps; long commas)
PREFIX_MS = 200  # audio kept before the detected speech onset
FIRST_PARTIAL_MS = 400  # speech before the first partial decode of an utterance
PARTIAL_STEP_MS = 400  # new audio before the next partial decode ...
EAGER_STEP_MS = 200  # ... or while the listener waits: every 200 ms frame
STEP_SLACK_MS = 100  # a streaming resampler hands out 200 ms frames as 2936 or 3426 samples
DETECT_MIN_MS = 1000  # audio a decode needs before its detected language is trusted
WINDOW_LIMIT_MS = 6000  # longest utterance (and decode window) before a forced cut
CUT_MIN_MS = 2000  # a forced cut leaves at least this much in the ended utterance ...
CUT_KEEP_MS = 300  # ... and at least this much to the new one
MAX_BUFFER_S = 60


def ms_to_samples(ms: int) -> int:
    return ms * ENGINE_RATE_HZ // MS_PER_S


SegmenterOutput = Command | SourceOutput


def cut_point(frames: list[tuple[int, float]], lo: int, hi: int, *, gap_below: float) -> int:
    """Where to end a pause-less utterance between ``lo`` and ``hi``: its likeliest gap between words.

    The latest frame whose smoothed speech probability is under ``gap_below`` (least audio to decode
    again), else the quietest frame, else ``hi``. ``frames`` are (frame start, speech probability).
    """
    smoothed = []
    for i, (start, _) in enumerate(frames):
        window = frames[max(0, i - 1) : i + 2]
        smoothed.append((start, sum(p for _, p in window) / len(window)))
    candidates = [(p, s) for s, p in smoothed if lo <= s <= hi]
    gaps = [s for p, s in candidates if p < gap_below]
    return max(gaps) if gaps else min(candidates, key=lambda c: (c[0], -c[1]))[1] if candidates else hi


@dataclass
class _Utterance:
    item_id: str
    start: int
    state: UtteranceState = UtteranceState.SPEAKING
    captions: CaptionTracker = field(default_factory=CaptionTracker)
    language: str | None = None
    committed: int = 0  # words of captions.sent already given out in pieces
    partial_job: str | None = None
    partial_end: int = 0
    pause_start: int | None = None  # where the current pause began (PAUSED)
    speculative_job: str | None = None
    speculative_end: int = 0
    speculative_result: Transcript | None = None
    final_job: str | None = None
    end: int | None = None  # set once the utterance has ended (pause, cut or flush)
    audio: Samples | None = None  # its audio, copied when it ended
    frames: list[tuple[int, float]] = field(default_factory=list)  # (frame start, speech probability)
    out: list[SourceOutput] = field(default_factory=list)  # outputs held until it is the oldest

    def to(self, state: UtteranceState) -> None:
        self.state = advance(self.state, state)

    def cut_stable(self, language: str, *, eager: bool) -> None:
        """Give out the stable words not yet given out, in as many pieces as :func:`piece_cut` finds."""
        while True:
            words = self.captions.sent[self.committed :]
            n = piece_cut(words, english=language == "en", eager=eager)
            if n == 0:
                return
            self.committed += n
            self.out.append(Piece(text=" ".join(words[:n]), language=language, audio=None, final=False))

    def settle(self, transcript: Transcript, language: str, *, whole: bool) -> None:
        """The final decode: settle the text and give out all of it (with the audio when ``whole``)."""
        delta = self.captions.final(transcript.text)
        if delta:
            self.out.append(delta)
        rest = self.captions.sent[self.committed :]
        self.committed = len(self.captions.sent)
        if rest:
            self.out.append(
                Piece(text=" ".join(rest), language=language, audio=self.audio if whole else None, final=True)
            )
        self.to(UtteranceState.DONE)
        self.audio = None


@dataclass(frozen=True)
class _Job:
    utterance: _Utterance
    kind: str  # "partial" | "speculative" | "final"
    audio_samples: int


class SpeechSegmenter:
    """Feed 16 kHz audio with :meth:`feed` and decodes with :meth:`on_result`; each returns its outputs.

    Outputs are the decodes to run or cancel (commands), then the source-transcript deltas and pieces
    ready to leave, in utterance order.

    Args:
        vad: The frame-level speech detector.
        ids: Id source for utterances and jobs.
        language: Fixed source language, or ``None`` to detect it per utterance (multilingual ASR).
        whole_utterances: Given a source language, whether its pieces must be whole utterances with
            their audio (speech translation) rather than clauses cut from the stable words.
        eager: Whether the listener has nothing left to hear, so that finer cuts are worth their cost.
        fallback_language: Source language assumed when detection gave nothing.
    """

    def __init__(
        self,
        *,
        vad: VadModel,
        ids: Ids,
        language: str | None,
        whole_utterances: Callable[[str], bool],
        eager: Callable[[], bool] = lambda: True,
        fallback_language: str = "en",
    ) -> None:
        self._ids = ids
        self._commands: list[Command] = []
        self.language = language
        self._whole = whole_utterances
        self._eager = eager
        self._fallback = fallback_language
        self.buffer = SampleBuffer(max_samples=MAX_BUFFER_S * ENGINE_RATE_HZ)
        self._vad = VadTrack(vad, sample_rate_hz=ENGINE_RATE_HZ, threshold=VAD_THRESHOLD, silence_duration_ms=PAUSE_MS)
        self._live: _Utterance | None = None
        self._pending: list[_Utterance] = []  # every utterance not yet done, oldest first
        self._jobs: dict[str, _Job] = {}
        self._last_end = 0
        self._ready: list[SourceOutput] = []
        self._case = SourceCase()

    # --- inputs ------------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing is being spoken, decoded or held back."""
        return not self._pending and not self._ready

    def feed(self, samples: Samples) -> list[SegmenterOutput]:
        """Add denoised 16 kHz audio (contiguous with what came before)."""
        self.buffer.append(samples)
        for frame in self._vad.scan(self.buffer):
            if self._live is not None:
                self._live.frames.append((frame.start, frame.probability))
            for event in frame.events:
                self._on_vad(event)
            self._maybe_cut()
        self._schedule_partial()
        self._trim()
        return self._outputs()

    def flush(self) -> list[SegmenterOutput]:
        """End of input: the utterance being spoken ends here and gets its final decode."""
        live = self._live
        if live is not None:
            self._end(live, live.pause_start if live.pause_start is not None else self.buffer.end)
        return self._outputs()

    def on_result(self, result: TranscriptReady | JobFailed) -> list[SegmenterOutput]:
        """Take a decode (one of a job this segmenter does not know is dropped)."""
        job = self._jobs.pop(result.job_id, None)
        if job is None:
            return []
        if isinstance(result, JobFailed):
            self._on_failure(job)
        else:
            self._on_transcript(job, result.transcript)
        self._schedule_partial()
        return self._outputs()

    def _outputs(self) -> list[SegmenterOutput]:
        """The commands of this call, then what is ready to leave, in order."""
        self._release()
        out: list[SegmenterOutput] = [*self._commands, *self._ready]
        self._commands, self._ready = [], []
        return out

    def owns(self, job_id: str) -> bool:
        return job_id in self._jobs

    # --- VAD ---------------------------------------------------------------------------------------

    def _on_vad(self, event: VadEvent) -> None:
        if isinstance(event, SpeechStart):
            if self._live is None:
                start = max(self._last_end, self.buffer.start, event.sample - ms_to_samples(PREFIX_MS))
                self._begin(start)
            return
        live = self._live
        if live is None:
            return
        if isinstance(event, SilenceStart) and live.state is UtteranceState.SPEAKING:
            live.to(UtteranceState.PAUSED)
            live.pause_start = event.sample
            self._speculate(live)
        elif isinstance(event, SpeechResumed) and live.state is UtteranceState.PAUSED:
            live.to(UtteranceState.SPEAKING)
            live.pause_start = None
            self._resume(live)
        elif isinstance(event, SpeechEnd):
            self._end(live, event.speech_end)

    def _begin(self, start: int, frames: list[tuple[int, float]] | None = None) -> _Utterance:
        u = _Utterance(item_id=self._ids.new("utt"), start=start, partial_end=start)
        u.frames = [f for f in frames or [] if f[0] >= start]
        self._live = u
        self._pending.append(u)
        return u

    def _maybe_cut(self) -> None:
        """Bound the decode window: end a pause-less utterance at its quietest moment."""
        live = self._live
        if live is None or live.pause_start is not None:
            return
        position = self._vad.position
        if position - live.start < ms_to_samples(WINDOW_LIMIT_MS):
            return
        lo, hi = live.start + ms_to_samples(CUT_MIN_MS), position - ms_to_samples(CUT_KEEP_MS)
        cut = cut_point(live.frames, lo, hi, gap_below=self._vad.detector.negative_threshold)
        self._end(live, cut)
        self._begin(cut, live.frames)
        live.frames = []

    # --- decodes -----------------------------------------------------------------------------------

    def _options(self, u: _Utterance) -> TranscribeOptions:
        return TranscribeOptions(language=self.language or u.language)

    def _request(self, u: _Utterance, kind: str, end: int) -> str:
        job_id = self._ids.new("job")
        audio = self.buffer.copy(u.start, end)
        self._jobs[job_id] = _Job(u, kind, audio.size)
        if kind == "final":
            u.audio = audio
        self._commands.append(
            Transcribe(
                job_id=job_id,
                item_id=u.item_id,
                audio=audio,
                options=self._options(u),
                final=kind != "partial",
                first_caption=kind == "partial" and not u.captions.sent,
            )
        )
        return job_id

    def _cancel(self, job_id: str | None) -> None:
        if job_id is not None and self._jobs.pop(job_id, None) is not None:
            self._commands.append(CancelJob(job_id))

    def _schedule_partial(self) -> None:
        u = self._live
        if u is None or u.partial_job is not None or u.speculative_job is not None or u.pause_start is not None:
            return
        end = self.buffer.end
        step_ms = EAGER_STEP_MS if self._eager() else PARTIAL_STEP_MS
        step = ms_to_samples(FIRST_PARTIAL_MS if u.partial_end <= u.start else step_ms)
        if end - max(u.partial_end, u.start) < step - ms_to_samples(STEP_SLACK_MS):
            return
        u.partial_job = self._request(u, "partial", end)
        u.partial_end = end

    def _speculate(self, u: _Utterance) -> None:
        """A pause began: decode up to it now, so the final is ready if the pause ends the utterance."""
        assert u.pause_start is not None
        if u.speculative_job is not None or u.pause_start - u.start < ms_to_samples(FIRST_PARTIAL_MS) // 2:
            return
        u.speculative_end = u.pause_start
        u.speculative_result = None
        u.speculative_job = self._request(u, "speculative", u.pause_start)

    def _resume(self, u: _Utterance) -> None:
        """Speech came back: a speculative decode still running serves as the next partial."""
        job_id = u.speculative_job
        u.speculative_job, u.speculative_result = None, None
        if job_id is None:
            return
        if u.partial_job is None and job_id in self._jobs:
            self._jobs[job_id] = _Job(u, "partial", self._jobs[job_id].audio_samples)
            u.partial_job, u.partial_end = job_id, u.speculative_end
        else:
            self._cancel(job_id)

    def _end(self, u: _Utterance, end: int) -> None:
        u.to(UtteranceState.ENDED)
        u.end = end
        self._last_end = max(self._last_end, end)
        if self._live is u:
            self._live = None
        self._cancel(u.partial_job)
        u.partial_job = None
        job_id, u.speculative_job = u.speculative_job, None
        running = self._jobs.get(job_id) if job_id is not None else None
        # A decode started at the pause that covers exactly this utterance is its final.
        if u.speculative_end == end and job_id is not None and running is not None:
            u.audio = self.buffer.copy(u.start, end)
            self._jobs[job_id] = replace(running, kind="final")
            u.final_job = job_id
            return
        if u.speculative_end == end and u.speculative_result is not None:
            u.audio = self.buffer.copy(u.start, end)
            self._finish(u, u.speculative_result)
            return
        self._cancel(job_id)
        if not u.captions.sent and end - u.start < ms_to_samples(FIRST_PARTIAL_MS) // 2:
            u.to(UtteranceState.DONE)  # a blip too short to hold a word
            return
        u.final_job = self._request(u, "final", end)

    def _on_transcript(self, job: _Job, transcript: Transcript) -> None:
        u = job.utterance
        if (
            u.language is None
            and transcript.language
            and (job.audio_samples >= ms_to_samples(DETECT_MIN_MS) or job.kind == "final")
        ):
            u.language = transcript.language
        if job.kind == "final":
            u.final_job = None
            self._finish(u, transcript)
            return
        # Whisper ends every window with a full stop and often cuts its last word: that word only counts
        # once a longer window has a word after it (so "left." at a breath does not end a clause).
        delta = u.captions.partial(" ".join(transcript.text.split()[:-1]))
        if delta:
            u.out.append(delta)
        if job.kind == "partial":
            u.partial_job = None
            self._commit_stable(u)
        else:  # a speculative decode, waiting for the pause to be confirmed
            u.speculative_job = None
            u.speculative_result = transcript
            self._commit_stable(u)

    def _on_failure(self, job: _Job) -> None:
        u = job.utterance
        if job.kind == "partial":
            u.partial_job = None
        elif job.kind == "speculative":  # an utterance that ends at its pause makes it the final first
            u.speculative_job = None
        else:
            u.final_job = None
            self._finish(u, Transcript(text="", language=u.language))

    def _finish(self, u: _Utterance, transcript: Transcript) -> None:
        language = self.language or u.language or transcript.language or self._fallback
        u.settle(transcript, language, whole=self._whole(language))

    def _commit_stable(self, u: _Utterance) -> None:
        language = self.language or u.language
        if language is not None and not self._whole(language):
            u.cut_stable(language, eager=self._eager())

    # --- order and memory --------------------------------------------------------------------------

    def _release(self) -> None:
        """Move outputs of the oldest utterances out, in order, dropping utterances that are done."""
        while self._pending:
            head = self._pending[0]
            self._ready += [self._case(output) for output in head.out]
            head.out = []
            if head.state is not UtteranceState.DONE:
                return
            self._pending.pop(0)

    def _trim(self) -> None:
        position = self._vad.position
        keep = self._live.start if self._live is not None else position - ms_to_samples(PREFIX_MS)
        self.buffer.drop_before(min(keep, position))
