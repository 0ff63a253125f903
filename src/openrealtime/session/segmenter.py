"""Live speech to stable source text in clause-sized pieces: the front half of simultaneous translation.

Speech is found by VAD. While an utterance lasts, its growing audio is decoded again and again; a word
is *stable* once two successive decodes agree on it and on everything before it (local agreement, see
:mod:`openrealtime.session.captions`) and a later word follows it (Whisper often cuts the last word of a
window short, and ends every window with a full stop whether the sentence ends there or not). Stable
words go out at once as source-transcript deltas, and leave as :class:`Piece` s of about a clause, so
that translation can start before the sentence ends:

* at a **pause** (``PAUSE_MS`` of VAD silence) the utterance ends; its final decode settles the rest;
* at **punctuation** inside the stable words (a comma or full stop that a later stable word follows);
* before a word that **opens a clause** ("and", "because", "which" ...; English sources);
* and only while the listener has nothing left to hear (when waiting costs silence, not just a later
  start): before a determiner, or at ``MAX_PIECE_WORDS`` whatever the words. Finer cuts cost quality
  (a rule-based translator needs the clause), so they are spent only where they buy latency.

Decode windows are bounded: an utterance that runs ``WINDOW_LIMIT_MS`` without a pause is ended at its
quietest moment (the likeliest gap between two words) and speech goes on in a new utterance, so no
decode ever covers more than a few seconds and long speech cannot build up lag. Outputs leave in
utterance order even when a later utterance's decodes come back first. Positions are absolute sample
indices at 16 kHz; nothing here reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript, VadModel
from openrealtime.session.captions import CaptionTracker
from openrealtime.session.commands import CancelJob, Command, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.ids import Ids
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


def ms_to_samples(ms: int) -> int:
    return ms * ENGINE_RATE_HZ // MS_PER_S


def samples_to_ms(samples: int) -> int:
    return samples * MS_PER_S // ENGINE_RATE_HZ


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
SegmenterOutput = Command | SourceOutput


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
        self._delta_open = False  # the source text given out so far ends inside a sentence
        self._piece_open = False

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
        candidates = [(p, s) for s, p in self._smoothed(live.frames) if lo <= s <= hi]
        # The latest gap between words if there is one (least audio to decode again), else the quietest.
        gaps = [s for p, s in candidates if p < self._vad.detector.negative_threshold]
        cut = max(gaps) if gaps else min(candidates, key=lambda c: (c[0], -c[1]))[1] if candidates else hi
        self._end(live, cut)
        self._begin(cut, live.frames)
        live.frames = []

    @staticmethod
    def _smoothed(frames: list[tuple[int, float]]) -> list[tuple[int, float]]:
        out = []
        for i, (start, _) in enumerate(frames):
            window = frames[max(0, i - 1) : i + 2]
            out.append((start, sum(p for _, p in window) / len(window)))
        return out

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
        speculative = self._jobs.get(u.speculative_job) if u.speculative_job is not None else None
        if u.speculative_end == end and (speculative is not None or u.speculative_result is not None):
            # The decode started at the pause covers exactly this utterance: it is the final.
            u.audio = self.buffer.copy(u.start, end)
            if speculative is not None and u.speculative_job is not None:
                self._jobs[u.speculative_job] = _Job(u, "final", speculative.audio_samples)
                u.final_job = u.speculative_job
            elif u.speculative_result is not None:
                self._finish(u, u.speculative_result)
            u.speculative_job = None
            return
        self._cancel(u.speculative_job)
        u.speculative_job = None
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
        elif job.kind == "speculative":
            u.speculative_job = None
            if u.state is UtteranceState.ENDED and u.end is not None:  # it was to be the final: decode again
                u.final_job = self._request(u, "final", u.end)
        else:
            u.final_job = None
            self._finish(u, Transcript(text="", language=u.language))

    def _finish(self, u: _Utterance, transcript: Transcript) -> None:
        """The final decode: settle the utterance's text and give out all of it."""
        delta = u.captions.final(transcript.text)
        if delta:
            u.out.append(delta)
        language = self.language or u.language or transcript.language or self._fallback
        rest = u.captions.sent[u.committed :]
        u.committed = len(u.captions.sent)
        if rest:
            audio = u.audio if self._whole(language) else None
            u.out.append(Piece(text=" ".join(rest), language=language, audio=audio, final=True))
        u.to(UtteranceState.DONE)
        u.audio = None

    def _commit_stable(self, u: _Utterance) -> None:
        language = self.language or u.language
        if language is None or self._whole(language):
            return
        while True:
            words = u.captions.sent[u.committed :]
            n = piece_cut(words, english=language == "en", eager=self._eager())
            if n == 0:
                return
            u.committed += n
            u.out.append(Piece(text=" ".join(words[:n]), language=language, audio=None, final=False))

    # --- order and memory --------------------------------------------------------------------------

    def _release(self) -> None:
        """Move outputs of the oldest utterances out, in order, dropping utterances that are done."""
        while self._pending:
            head = self._pending[0]
            self._ready += [self._cased(output) for output in head.out]
            head.out = []
            if head.state is not UtteranceState.DONE:
                return
            self._pending.pop(0)

    def _cased(self, output: SourceOutput) -> SourceOutput:
        if isinstance(output, str):
            if not output.strip():
                return output
            output = sentence_case(output, starts_sentence=not self._delta_open)
            self._delta_open = not _SENTENCE_END.search(output)
            return output
        text = sentence_case(output.text, starts_sentence=not self._piece_open)
        self._piece_open = not _SENTENCE_END.search(text)
        return replace(output, text=text)

    def _trim(self) -> None:
        position = self._vad.position
        keep = self._live.start if self._live is not None else position - ms_to_samples(PREFIX_MS)
        self.buffer.drop_before(min(keep, position))
