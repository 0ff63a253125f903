"""The input audio buffer of a session: decode, resample, VAD turns, commits and live transcription.

Shared by transcription and realtime sessions (reference sections 4, 5.2, 5.4 and 7). Audio arrives
in the session's input format, is decoded once, resampled with one stateful resampler to 16 kHz (the
rate of VAD and ASR), optionally denoised, and kept in a capped buffer addressed by absolute sample
index, so every ``*_ms`` field is derived from sample counts. Each turn gets its item id when it
begins, so live-caption deltas can name the item before it is committed, as OpenAI's streaming
transcription models do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from openrealtime.audio.buffer import BufferFullError, SampleBuffer
from openrealtime.audio.codec import AudioFormat, decode_audio
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.contracts import NoiseStream, NoiseSuppressor, TranscribeOptions, VadModel
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import DEFAULT_VAD_THRESHOLD, AudioInput, SemanticVad, ServerVad
from openrealtime.session.captions import CaptionTracker
from openrealtime.session.commands import CancelJob, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.endpointing import EAGERNESS, Eagerness, looks_complete
from openrealtime.session.ids import Ids
from openrealtime.session.vad import SilenceStart, SpeechEnd, SpeechResumed, SpeechStart, TurnDetector

ENGINE_RATE_HZ = 16_000
MIN_COMMIT_MS = 100
MAX_BUFFER_S = 600  # uncommitted audio held at most (OpenAI was seen holding 305 s)
PARTIAL_STEP_MS = 200  # new audio needed before the next live-caption decode
FIRST_PARTIAL_MS = 200  # speech (after its onset) needed before the first one
# Until a turn shows its first words, decode after every 100 ms chunk: a word is shown once two
# successive decodes agree on it, and on a hard onset (tiny.en hears "She bought" as "Cheeba",
# "Cheeb up", "Cheebop") two agreeing guesses come sooner when they are 100 ms apart than 200.
# It costs two or three more decodes a turn; the ASR queue serves them before later partials.
FIRST_CAPTION_STEP_MS = 100
# soxr hands its output out in blocks (92 or 122 ms for each 100 ms sent at 24 kHz), so a step is
# due this much early; an exact threshold would often wait one more chunk and stretch 200 ms to 300.
RESAMPLER_SLACK_MS = 20
SPECULATE_AFTER_MS = 60  # pause after which the final decode starts, before the turn has ended
WINDOW_LIMIT_S = 20.0  # decode window beyond which the turn's start is frozen at a segment end
SEGMENT_KEEP_S = 2.0  # never freeze the window closer than this to its end
MS_PER_S = 1000
DEFAULT_PREFIX_PADDING_MS = 300
DEFAULT_SILENCE_MS = 500  # manual mode: pauses only matter for speculation and live captions


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
    saw_speech: bool = False
    speech_end: int | None = None  # start of the current pause, if any
    # Decodes 100-200 ms apart often end on the same cut word: hold it (see CaptionTracker).
    captions: CaptionTracker = field(default_factory=lambda: CaptionTracker(hold_cut_word=True))
    partial_job: str | None = None
    partial_end: int = 0
    onset: int | None = None  # where speech first began in this turn
    speculative_job: str | None = None
    speculative_end: int = 0
    final_job: str | None = None
    final_result: str | None = None  # a speculative final's text, waiting for the commit
    committed: bool = False
    duration_samples: int = 0


@dataclass(frozen=True)
class CommittedAudio:
    """What a commit produced: the new user item's id, its predecessor and its audio span."""

    item_id: str
    previous_item_id: str | None
    start: int
    end: int


@dataclass
class _Job:
    turn: Turn
    kind: str  # "partial" | "speculative" | "final"
    audio_start: int
    audio_end: int
    timestamps: bool


class InputAudioBuffer:
    """Everything between ``input_audio_buffer.append`` and ``...transcription.completed``.

    Server events go to the owning session's ``events`` list and commands to its ``commands`` list.
    The session, which owns the conversation, hears of turns through two callbacks, called right
    after the corresponding event is queued so it can queue its own events in protocol order:
    ``on_speech_started(item_id)`` (barge-in) and ``on_committed(CommittedAudio)`` (the new item).
    """

    def __init__(
        self,
        *,
        vad: VadModel,
        ids: Ids,
        config: AudioInput,
        events: list[se.ServerEvent],
        commands: list[object],
        on_committed: Callable[[CommittedAudio], None],
        on_speech_started: Callable[[str], None] | None = None,
        on_transcript: Callable[[str, str], None] | None = None,
        on_speculation: Callable[[str, str | None], None] | None = None,
        always_transcribe: bool = False,
        partial_step_ms: int = PARTIAL_STEP_MS,
        previous_item: Callable[[], str | None] | None = None,
        noise: NoiseSuppressor | None = None,
    ) -> None:
        self._vad_model = vad
        self._vad = vad.new_stream()
        self._noise_model = noise
        self._noise: NoiseStream | None = None
        self._ids = ids
        self.events = events
        self.commands = commands
        self._on_committed = on_committed
        self._on_speech_started = on_speech_started
        self._on_transcript = on_transcript
        # Told the speculative final transcript of a turn in a pause (item id, text), and told again
        # with ``None`` when the speaker went on, so a realtime session can start its answer early.
        self._on_speculation = on_speculation
        # Realtime sessions need every turn's words for the LLM, whether or not the client asked for
        # transcription events; transcription sessions transcribe only when configured to.
        self._always_transcribe = always_transcribe
        self._partial_step_ms = partial_step_ms
        self._semantic: Eagerness | None = None
        # What a commit's ``previous_item_id`` names: the last commit in a transcription session, the
        # conversation's last item in a realtime one (reference 6.3).
        self._previous_item = previous_item or (lambda: self.last_committed_item)
        self.completed_transcripts: dict[str, str] = {}
        self.last_commit_audio: Samples | None = None  # the session takes it if it keeps item audio
        self._format = AudioFormat(config.format.type)
        self._resampler = StreamResampler(self._format.rate_hz, ENGINE_RATE_HZ)
        self.buffer = SampleBuffer(max_samples=MAX_BUFFER_S * ENGINE_RATE_HZ)
        self._vad_pos = 0
        self.turn: Turn | None = None
        self._jobs: dict[str, _Job] = {}
        self._detector = TurnDetector(
            sample_rate_hz=ENGINE_RATE_HZ,
            frame_samples=vad.frame_samples,
            threshold=0.5,
            silence_duration_ms=200,
        )
        self._pending_odd_byte = b""
        self._input_samples_since_commit = 0  # at the wire rate: the 100 ms rule counts what was sent
        self.config = config
        self.configure(config)
        self.last_committed_item: str | None = None

    # --- configuration -----------------------------------------------------------------------------

    def configure(self, config: AudioInput) -> None:
        fmt = AudioFormat(config.format.type)
        if fmt is not self._format:
            self._format = fmt
            self._resampler = StreamResampler(fmt.rate_hz, ENGINE_RATE_HZ)
            self._pending_odd_byte = b""
        td = config.turn_detection
        threshold = td.threshold if isinstance(td, ServerVad) else DEFAULT_VAD_THRESHOLD
        self._semantic = None
        if isinstance(td, ServerVad):
            silence_ms = td.silence_duration_ms
        elif isinstance(td, SemanticVad):
            # The detector only enforces the cap; shorter pauses end the turn when the words are done.
            self._semantic = EAGERNESS[td.eagerness]
            silence_ms = self._semantic.cap_ms
        else:
            silence_ms = DEFAULT_SILENCE_MS
        self._detector.configure(threshold=threshold, silence_duration_ms=silence_ms)
        nr = config.noise_reduction
        if nr is None:
            self._noise = None
        elif self._noise_model is not None and (self.config.noise_reduction != nr or self._noise is None):
            self._noise = self._noise_model.new_stream(nr.type, 1.0 if nr.strength is None else nr.strength)
        self.config = config

    @property
    def vad_enabled(self) -> bool:
        return self.config.turn_detection is not None

    @property
    def transcription_enabled(self) -> bool:
        return self._always_transcribe or self.config.transcription is not None

    @property
    def emits_transcription(self) -> bool:
        return self.config.transcription is not None

    def _options(self, *, timestamps: bool = False) -> TranscribeOptions:
        t = self.config.transcription
        return TranscribeOptions(
            language=t.language if t else None,
            prompt=t.prompt if t else None,
            timestamps=timestamps,
        )

    # --- append ------------------------------------------------------------------------------------

    def append(self, data: bytes, *, event_id: str | None) -> list[str]:
        """Add wire audio; returns the item ids of turns whose speech started in it."""
        if self._format is AudioFormat.PCM:
            data = self._pending_odd_byte + data
            self._pending_odd_byte = data[-1:] if len(data) % 2 else b""
            if self._pending_odd_byte:
                data = data[:-1]
        decoded = decode_audio(data, self._format)
        self._input_samples_since_commit += decoded.size
        samples = self._resampler.process(decoded)
        if self._noise is not None:
            samples = self._noise.process(samples)
        try:
            self.buffer.append(samples)
        except BufferFullError:
            raise ProtocolError(
                f"Input audio buffer is full: it holds {MAX_BUFFER_S} s of uncommitted audio. Commit or clear it.",
                code="input_audio_buffer_full",
                event_id=event_id,
            ) from None
        if not self.vad_enabled and self.turn is None and samples.size:
            self._begin_turn(self.buffer.end - samples.size)
        return self._run_vad()

    def _run_vad(self) -> list[str]:
        started: list[str] = []
        frame = self._vad_model.frame_samples
        first = max(self._vad_pos, self.buffer.start)
        count = (self.buffer.end - first) // frame
        # Every whole frame in one model call (cheaper per frame); the hysteresis then runs frame by
        # frame, exactly as if they had come one at a time.
        probabilities = self._vad.probabilities(self.buffer.view(first, first + count * frame)) if count else []
        for index, probability in enumerate(probabilities):
            start = first + index * frame
            for event in self._detector.feed(start, probability):
                item = self._on_vad(event)
                if item is not None:
                    started.append(item)
            self._vad_pos = start + frame
            self._maybe_end_semantic_turn()
        self._schedule_partial()
        if self.vad_enabled and self.turn is None:
            # Idle: keep only what a future turn's prefix padding could need.
            self.buffer.drop_before(self._vad_pos - self._padding_samples())
        return started

    def _on_vad(self, event: SpeechStart | SilenceStart | SpeechResumed | SpeechEnd) -> str | None:
        if isinstance(event, SpeechStart):
            if self.turn is not None:
                self.turn.saw_speech = True
                self.turn.speech_end = None
                if self.turn.onset is None:
                    self.turn.onset = event.sample
                return None
            if not self.vad_enabled:
                return None
            turn = self._begin_turn(max(self.buffer.start, event.sample - self._padding_samples()))
            turn.saw_speech = True
            turn.onset = event.sample
            self.events.append(se.SpeechStarted(audio_start_ms=samples_to_ms(turn.start), item_id=turn.item_id))
            if self._on_speech_started is not None:
                self._on_speech_started(turn.item_id)
            return turn.item_id
        current = self.turn
        if current is None:
            return None
        turn = current
        if isinstance(event, SilenceStart):
            turn.speech_end = event.sample
            self._speculate(turn)
        elif isinstance(event, SpeechResumed):
            turn.speech_end = None
            self._drop_speculation(turn)
        elif isinstance(event, SpeechEnd) and self.vad_enabled:
            self.events.append(se.SpeechStopped(audio_end_ms=samples_to_ms(event.sample), item_id=turn.item_id))
            self._commit_turn(turn, end=event.sample, speech_end=event.speech_end)
        return None

    def _maybe_end_semantic_turn(self) -> None:
        """semantic_vad: end the turn at a pause long enough for words that read as finished."""
        turn = self.turn
        if self._semantic is None or turn is None or turn.speech_end is None or turn.final_result is None:
            return
        pause_ms = samples_to_ms(self._vad_pos - turn.speech_end)
        if pause_ms < self._semantic.complete_pause_ms:
            return
        if not looks_complete(" ".join([*turn.captions.frozen, turn.final_result])):
            return  # trailing off mid-sentence: keep listening, up to the eagerness cap
        self._detector.reset()
        self.events.append(se.SpeechStopped(audio_end_ms=samples_to_ms(self._vad_pos), item_id=turn.item_id))
        self._commit_turn(turn, end=self._vad_pos, speech_end=turn.speech_end)

    def _padding_samples(self) -> int:
        td = self.config.turn_detection
        return ms_to_samples(td.prefix_padding_ms if isinstance(td, ServerVad) else DEFAULT_PREFIX_PADDING_MS)

    def _begin_turn(self, start: int) -> Turn:
        self.turn = Turn(item_id=self._ids.new("item"), start=start, window_start=start, partial_end=start)
        return self.turn

    # --- live captions -----------------------------------------------------------------------------

    def _request(self, turn: Turn, kind: str, start: int, end: int, *, timestamps: bool = False) -> str:
        job_id = self._ids.new("job")
        self._jobs[job_id] = _Job(turn, kind, start, end, timestamps)
        self.commands.append(
            Transcribe(
                job_id=job_id,
                item_id=turn.item_id,
                audio=self.buffer.copy(start, end),
                options=self._options(timestamps=timestamps),
                final=kind != "partial",
                first_caption=kind == "partial" and self._awaits_first_words(turn),
            )
        )
        return job_id

    def _awaits_first_words(self, turn: Turn) -> bool:
        """The client is shown this turn's captions and has seen none of its words yet.

        Only then is a partial urgent: a realtime session that sends no transcription events
        decodes partials for its own use, at the normal step and priority.
        """
        return self.emits_transcription and not turn.captions.sent

    def _schedule_partial(self) -> None:
        turn = self.turn
        if (
            turn is None
            or not self.transcription_enabled
            or not turn.saw_speech
            or turn.partial_job is not None
            or turn.speculative_job is not None
            or turn.speech_end is not None
        ):
            return
        end = self.buffer.end
        if turn.partial_end <= turn.start:  # no partial yet: wait for a little speech, not the padding
            due = (turn.onset if turn.onset is not None else turn.start) + ms_to_samples(FIRST_PARTIAL_MS)
        else:
            step_ms = FIRST_CAPTION_STEP_MS if self._awaits_first_words(turn) else self._partial_step_ms
            due = turn.partial_end + ms_to_samples(step_ms)
        if end + ms_to_samples(RESAMPLER_SLACK_MS) < due:
            return
        long_window = (end - turn.window_start) / ENGINE_RATE_HZ > WINDOW_LIMIT_S
        turn.partial_job = self._request(turn, "partial", turn.window_start, end, timestamps=long_window)
        turn.partial_end = end

    def _speculate(self, turn: Turn) -> None:
        if not self.transcription_enabled or not self.vad_enabled or turn.speech_end is None:
            return
        td = self.config.turn_detection
        silence_ms = td.silence_duration_ms if isinstance(td, ServerVad) else SPECULATE_AFTER_MS + 1
        if silence_ms <= SPECULATE_AFTER_MS:
            return  # the turn ends so soon that the real final decode is just as early
        turn.speculative_end = turn.speech_end
        turn.speculative_job = self._request(turn, "speculative", turn.window_start, turn.speech_end)

    def _drop_speculation(self, turn: Turn) -> None:
        if turn.speculative_job is not None:
            self.commands.append(CancelJob(turn.speculative_job))
            self._jobs.pop(turn.speculative_job, None)
            turn.speculative_job = None
        if turn.final_result is not None and self._on_speculation is not None:
            self._on_speculation(turn.item_id, None)
        turn.final_result = None

    # --- commit / clear ----------------------------------------------------------------------------

    def commit(self, *, event_id: str | None) -> CommittedAudio:
        """Client ``input_audio_buffer.commit``: the audio since the last commit becomes an item."""
        turn = self.turn
        held_ms = self._input_samples_since_commit * MS_PER_S / self._format.rate_hz if turn is not None else 0.0
        if held_ms < MIN_COMMIT_MS:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {held_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event_id,
            )
        assert turn is not None
        # Push the resampler's tail into the buffer so the item holds every sample that was sent.
        self.buffer.append(self._resampler.flush())
        self._resampler = StreamResampler(self._format.rate_hz, ENGINE_RATE_HZ)
        self._run_vad()
        self._detector.reset()
        end = self.buffer.end
        return self._commit_turn(turn, end=end, speech_end=end)

    def commit_silence(self, start: int) -> CommittedAudio:
        """``server_vad.idle_timeout_ms``: commit the quiet audio since ``start`` as a user item."""
        turn = self._begin_turn(max(start, self.buffer.start))
        end = self.buffer.end
        self.events.append(
            se.TimeoutTriggered(
                audio_start_ms=samples_to_ms(turn.start), audio_end_ms=samples_to_ms(end), item_id=turn.item_id
            )
        )
        return self._commit_turn(turn, end=end, speech_end=end)

    def _commit_turn(self, turn: Turn, *, end: int, speech_end: int) -> CommittedAudio:
        committed = CommittedAudio(turn.item_id, self._previous_item(), turn.start, end)
        self._input_samples_since_commit = 0
        self.last_committed_item = turn.item_id
        turn.committed = True
        turn.duration_samples = end - turn.start
        self.turn = None
        if turn.partial_job is not None:
            self.commands.append(CancelJob(turn.partial_job))
            self._jobs.pop(turn.partial_job, None)
            turn.partial_job = None
        self.last_commit_audio = self.buffer.copy(turn.start, end)
        self.events.append(se.Committed(previous_item_id=committed.previous_item_id, item_id=turn.item_id))
        self._on_committed(committed)
        if not self.transcription_enabled:
            pass
        elif turn.speculative_job is not None and turn.speculative_end == speech_end:
            turn.final_job, turn.speculative_job = turn.speculative_job, None
        else:
            self._drop_speculation(turn)
            if turn.saw_speech:
                turn.final_job = self._request(turn, "final", turn.window_start, speech_end)
        if self.transcription_enabled:
            if not turn.saw_speech:
                self._complete(turn, "")  # silence: nothing to decode (and Whisper would invent words)
            elif turn.final_result is not None:
                self._complete(turn, turn.final_result)
        self.buffer.drop_before(end)
        self._vad_pos = max(self._vad_pos, end)
        return committed

    def clear(self) -> None:
        """Client ``input_audio_buffer.clear``: forget uncommitted audio and its turn."""
        if self.turn is not None:
            if self.turn.partial_job is not None:
                self.commands.append(CancelJob(self.turn.partial_job))
                self._jobs.pop(self.turn.partial_job, None)
            self._drop_speculation(self.turn)
            self.turn = None
        self.buffer.clear()
        self._vad_pos = self.buffer.end
        self._detector.reset()
        self._vad.reset()
        self.events.append(se.Cleared())

    # --- engine results ----------------------------------------------------------------------------

    def on_result(self, result: TranscriptReady | JobFailed) -> None:
        job = self._jobs.pop(result.job_id, None)
        if job is None:
            return  # late result of a cancelled or superseded job: dropped by id
        turn = job.turn
        if isinstance(result, JobFailed):
            if job.kind == "partial":
                turn.partial_job = None
                self._schedule_partial()
                return
            if job.kind == "speculative" and not turn.committed:
                turn.speculative_job = None
                return
            if self._on_transcript is not None:
                self._on_transcript(turn.item_id, "")
            if not self.emits_transcription:
                return
            self.events.append(
                se.TranscriptionFailed(
                    item_id=turn.item_id,
                    error={
                        "type": "server_error",
                        "code": result.code,
                        "message": result.message,
                        "param": None,
                    },
                )
            )
            return
        text = result.transcript.text
        if job.kind == "partial":
            turn.partial_job = None
            delta = turn.captions.partial(text)
            if delta and self.emits_transcription:
                self.events.append(se.TranscriptionDelta(item_id=turn.item_id, delta=delta))
            if job.timestamps:
                self._slide_window(turn, job, result)
            self._schedule_partial()
            return
        if not turn.committed:
            turn.final_result = text  # speculative, waiting for the turn to end
            if self._on_speculation is not None:
                self._on_speculation(turn.item_id, text)
            self._maybe_end_semantic_turn()
            return
        self._complete(turn, text)

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

    def _complete(self, turn: Turn, final_text: str) -> None:
        delta = turn.captions.final(final_text)
        if self.emits_transcription:
            if delta:
                self.events.append(se.TranscriptionDelta(item_id=turn.item_id, delta=delta))
            seconds = max(1, math.ceil(turn.duration_samples / ENGINE_RATE_HZ))
            self.events.append(
                se.TranscriptionCompleted(
                    item_id=turn.item_id,
                    transcript=turn.captions.text,
                    usage={"type": "duration", "seconds": seconds},
                )
            )
        self.completed_transcripts[turn.item_id] = turn.captions.text
        if self._on_transcript is not None:
            self._on_transcript(turn.item_id, turn.captions.text)
