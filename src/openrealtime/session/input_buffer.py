"""The input audio buffer of a session: audio in, VAD turns, commits and clears.

Shared by transcription and realtime sessions (reference sections 4, 5.2, 5.4 and 7). Audio goes
through the front end (:mod:`~openrealtime.session.frontend`) into a capped buffer addressed by
absolute 16 kHz sample index, so every ``*_ms`` field is derived from sample counts. Each turn gets
its item id when it begins, so live-caption deltas can name the item before it is committed, as
OpenAI's streaming transcription models do; its words come from
:class:`~openrealtime.session.turns.TurnTranscriber`.

Every public method returns its outputs in order: server events, commands, and the signals the owning
session reacts to (:mod:`~openrealtime.session.signals`): speech started (barge-in), turn committed
(the session writes ``input_audio_buffer.committed`` and adds the item), transcript final, and the
pause that may end the turn.

``semantic_vad`` ends a turn on the end-of-turn model's word (:mod:`~openrealtime.session.endpointing`):
at a pause it emits a :class:`~openrealtime.session.commands.PredictTurnEnd` and commits when the
answer says "complete" while the same pause still goes on; the VAD's own silence rule only enforces
the eagerness's maximum wait. That decision is :mod:`~openrealtime.session.turn_end`'s mixin.
"""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.audio.buffer import BufferFullError, SampleBuffer
from openrealtime.audio.codec import AudioFormat
from openrealtime.audio.types import Samples
from openrealtime.contracts import NoiseSuppressor, VadModel
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import DEFAULT_VAD_THRESHOLD, AudioInput, SemanticVad, ServerVad
from openrealtime.session.commands import (
    AudioIn,
    JobFailed,
    SessionInput,
    TranscriptReady,
    TurnEndPredicted,
)
from openrealtime.session.endpointing import EAGERNESS, END_OF_TURN, Eagerness, EndOfTurnPolicy
from openrealtime.session.eou_text import WordsEndOfTurn
from openrealtime.session.frontend import ENGINE_RATE_HZ, AudioFrontEnd
from openrealtime.session.ids import Ids
from openrealtime.session.quiet import QUIET_MS, QuietWatch
from openrealtime.session.signals import Output, SpeechStarted, TurnCommitted, TurnHeard, TurnMayEnd
from openrealtime.session.states import TurnState
from openrealtime.session.turn_end import TurnEnding
from openrealtime.session.turns import (
    PARTIAL_STEP_MS,
    Turn,
    TurnTranscriber,
    ms_to_samples,
    samples_to_ms,
)
from openrealtime.session.vad import SilenceStart, SpeechEnd, SpeechResumed, SpeechStart, VadEvent, VadTrack

MIN_COMMIT_MS = 100
MAX_BUFFER_S = 600  # uncommitted audio held at most (OpenAI was seen holding 305 s)
MS_PER_S = 1000
DEFAULT_PREFIX_PADDING_MS = 300
DEFAULT_SILENCE_MS = 500  # manual mode: pauses only matter for speculation and live captions
INITIAL_SILENCE_MS = 200  # the detector's pause before the first configure sets the session's


@dataclass(frozen=True)
class BufferOptions:
    """How a session kind uses its buffer.

    Attributes:
        always_transcribe: Transcribe every turn, whether or not the client asked for transcription
            events (a realtime session's LLM needs the words).
        partial_step_ms: New audio between two live-caption decodes once words are showing.
    """

    always_transcribe: bool = False
    partial_step_ms: int = PARTIAL_STEP_MS


class InputAudioBuffer(TurnEnding):
    """Everything between ``input_audio_buffer.append`` and ``...transcription.completed``.

    Args:
        config: The session's ``audio.input`` settings.
        vad: The frame-level speech model.
        ids: The session's id source (item ids are given when a turn begins).
        noise: The noise suppressor for ``noise_reduction``, if the server has one.
        options: How the session kind uses the buffer.
    """

    def __init__(
        self,
        config: AudioInput,
        *,
        vad: VadModel,
        ids: Ids,
        noise: NoiseSuppressor | None = None,
        options: BufferOptions = BufferOptions(),
    ) -> None:
        self._ids = ids
        self._frontend = AudioFrontEnd(noise)
        self.buffer = SampleBuffer(max_samples=MAX_BUFFER_S * ENGINE_RATE_HZ)
        self._vad = VadTrack(
            vad, sample_rate_hz=ENGINE_RATE_HZ, threshold=DEFAULT_VAD_THRESHOLD, silence_duration_ms=INITIAL_SILENCE_MS
        )
        self._quiet = QuietWatch(ENGINE_RATE_HZ)  # the speech's end by its loudness (session/quiet.py)
        self._words = TurnTranscriber(
            self.buffer, ids, always=options.always_transcribe, partial_step_ms=options.partial_step_ms
        )
        self.turn: Turn | None = None
        self._semantic: Eagerness | None = None  # the word rule's pauses (semantic_vad without a model)
        self._end_of_turn: EndOfTurnPolicy | None = None  # semantic_vad's use of the model
        self._model_missing = False  # the runtime said it has no end-of-turn model: use the word rule
        self._question = None
        self._asked_at = 0  # pause length (samples) at the last question of the current pause
        self._probability: float | None = None  # the model's latest answer in the current pause
        self._text = WordsEndOfTurn(ids)  # the LLM's word on the pause's words (session/eou_text.py)
        self._input_ms_since_commit = 0.0  # the 100 ms rule counts what was sent, at its own rate
        self.config = config
        self.configure(config)

    def configure(self, config: AudioInput, *, logprobs: bool = False) -> None:
        """Take the session's ``audio.input`` settings, and whether its ``include`` asks for the
        transcription's token log-probabilities."""
        td = config.turn_detection
        self._semantic = None
        self._end_of_turn = None
        if isinstance(td, ServerVad):
            silence_ms = td.silence_duration_ms
        elif isinstance(td, SemanticVad):
            # The detector only enforces the cap; shorter pauses end the turn when the model (or, without
            # one, the words) says it is done.
            self._semantic = EAGERNESS[td.eagerness]
            self._end_of_turn = END_OF_TURN[td.eagerness]
            silence_ms = self._end_of_turn.max_wait_ms
        else:
            silence_ms = DEFAULT_SILENCE_MS
        threshold = td.threshold if isinstance(td, ServerVad) else DEFAULT_VAD_THRESHOLD
        self._vad.detector.configure(threshold=threshold, silence_duration_ms=silence_ms)
        self._frontend.configure(config.noise_reduction)
        self._words.configure(config, logprobs=logprobs)
        self.config = config

    @property
    def input_format(self) -> AudioFormat:
        """The wire format of input audio (the edge decodes appends from it)."""
        return AudioFormat(self.config.format.type)

    def receive(self, event: SessionInput) -> list[Output] | None:
        """The outputs of an ``input_audio_buffer.*`` event; ``None`` for any other event."""
        match event:
            case AudioIn(event=ce.InputAudioBufferAppend()):
                return self.append(event.samples, event.rate_hz, event_id=event.event_id)
            case ce.InputAudioBufferCommit():
                return self.commit(event_id=event.event_id)
            case ce.InputAudioBufferClear():
                return self.clear()
        return None

    @property
    def vad_enabled(self) -> bool:
        return self.config.turn_detection is not None

    def owns(self, job_id: str) -> bool:
        if self._text.owns(job_id):
            return True
        return self._words.owns(job_id) or (self._question is not None and self._question.job_id == job_id)

    # --- append ------------------------------------------------------------------------------------

    def append(self, audio: Samples, rate_hz: int, *, event_id: str | None) -> list[Output]:
        """Add input audio (mono float32 at ``rate_hz``)."""
        self._input_ms_since_commit += audio.size * MS_PER_S / rate_hz
        samples = self._frontend.process(audio, rate_hz)
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

    def _run_vad(self) -> list[Output]:
        out = self._watch_quiet()
        for frame in self._vad.scan(self.buffer):
            for event in frame.events:
                out += self._on_vad(event)
            if self.turn is not None and self.turn.state is TurnState.SPEAKING:
                out += self._words.flicker.speech_goes_on(self.turn, frame.start + self._vad.frame_samples)
            if self.turn is not None and self.turn.state is TurnState.PAUSED:
                out += self._words.speculate(self.turn, vad_enabled=self.vad_enabled)
            out += self._maybe_end_semantic_turn()
        if self.turn is not None:
            out += self._words.schedule_partial(self.turn)
        if self.vad_enabled and self.turn is None:
            # Idle: keep only what a future turn's prefix padding could need.
            self.buffer.drop_before(self._vad.position - self._padding_samples())
        return out

    def _watch_quiet(self) -> list[Output]:
        """The speech gone quiet before the VAD's pause starts the pause's decode; speech back drops it."""
        self._quiet.scan(self.buffer)
        turn = self.turn
        if turn is None or turn.state is not TurnState.SPEAKING or not self.vad_enabled:
            return []
        if self._quiet.quiet_samples < ms_to_samples(QUIET_MS):
            return self._words.early.drop(turn) if self._quiet.quiet_since is None else []
        return self._words.early.begin(turn)

    def _on_vad(self, event: VadEvent) -> list[Output]:
        turn = self.turn
        if isinstance(event, SpeechStart):
            if turn is not None:
                if turn.onset is None:
                    turn.onset = event.sample
                if turn.state is not TurnState.SPEAKING:
                    turn.to(TurnState.SPEAKING)
                turn.pause_start = None
                return []
            if not self.vad_enabled:
                return []
            turn = self._begin_turn(max(self.buffer.start, event.sample - self._padding_samples()))
            turn.onset = event.sample
            turn.to(TurnState.SPEAKING)
            return [
                se.SpeechStarted(audio_start_ms=samples_to_ms(turn.start), item_id=turn.item_id),
                SpeechStarted(turn.item_id),
            ]
        if turn is None:
            return []
        if isinstance(event, SilenceStart) and turn.state is TurnState.SPEAKING:
            turn.to(TurnState.PAUSED)
            turn.pause_start = event.sample
            return self._words.flicker.paused_again(turn, event.sample) + self._words.early.adopt(turn)
        if isinstance(event, SpeechResumed) and turn.state is TurnState.PAUSED:
            turn.to(TurnState.SPEAKING)
            turn.pause_start = None
            # Perhaps a flicker on a last consonant: the pause's words and answer are kept a moment.
            return self._drop_question() + self._words.flicker.speech_resumed(turn, event.sample)
        if isinstance(event, SpeechEnd) and self.vad_enabled:
            stopped = se.SpeechStopped(audio_end_ms=samples_to_ms(event.sample), item_id=turn.item_id)
            return [stopped, *self._commit_turn(turn, end=event.sample, speech_end=event.speech_end)]
        return []

    def _end_turn_in_pause(self, turn: Turn) -> list[Output]:
        assert turn.pause_start is not None
        position = self._vad.position
        self._vad.detector.reset()
        stopped = se.SpeechStopped(audio_end_ms=samples_to_ms(position), item_id=turn.item_id)
        return [stopped, *self._commit_turn(turn, end=position, speech_end=turn.pause_start)]

    def _padding_samples(self) -> int:
        td = self.config.turn_detection
        return ms_to_samples(td.prefix_padding_ms if isinstance(td, ServerVad) else DEFAULT_PREFIX_PADDING_MS)

    def _begin_turn(self, start: int) -> Turn:
        self.turn = Turn(item_id=self._ids.new("item"), start=start, window_start=start, partial_end=start)
        return self.turn

    # --- commit / clear ----------------------------------------------------------------------------

    def commit(self, *, event_id: str | None) -> list[Output]:
        """Client ``input_audio_buffer.commit``: the audio since the last commit becomes an item."""
        turn = self.turn
        held_ms = self._input_ms_since_commit if turn is not None else 0.0
        if turn is None or held_ms < MIN_COMMIT_MS:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {held_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event_id,
            )
        # Push the resampler's tail into the buffer so the item holds every sample that was sent.
        self.buffer.append(self._frontend.flush())
        out = self._run_vad()
        self._vad.detector.reset()
        end = self.buffer.end
        return out + self._commit_turn(turn, end=end, speech_end=end)

    def commit_silence(self, start: int) -> list[Output]:
        """``server_vad.idle_timeout_ms``: commit the quiet audio since ``start`` as a user item."""
        turn = self._begin_turn(max(start, self.buffer.start))
        end = self.buffer.end
        timeout = se.TimeoutTriggered(
            audio_start_ms=samples_to_ms(turn.start), audio_end_ms=samples_to_ms(end), item_id=turn.item_id
        )
        return [timeout, *self._commit_turn(turn, end=end, speech_end=end)]

    def _commit_turn(self, turn: Turn, *, end: int, speech_end: int) -> list[Output]:
        self._input_ms_since_commit = 0.0
        out = self._drop_question() + self._words.flicker.before_commit(turn)
        turn.to(TurnState.COMMITTED)
        turn.duration_samples = end - turn.start
        self.turn = None
        out += self._words.cancel_partial(turn)
        out.append(TurnCommitted(turn.item_id, turn.start, end, self.buffer.copy(turn.start, end)))
        out += self._words.finalize(turn, speech_end=speech_end)
        self.buffer.drop_before(end)
        self._vad.position = max(self._vad.position, end)
        return out

    def speech_to_start(self, ms: int) -> None:
        """The speech a turn needs to start from now on (longer while the server's voice may come back)."""
        detector = self._vad.detector
        detector.start_samples = ms * detector.sample_rate_hz // MS_PER_S

    def clear(self) -> list[Output]:
        """Client ``input_audio_buffer.clear``: forget uncommitted audio and its turn."""
        out: list[Output] = self._drop_question()
        if self.turn is not None:
            out += self._words.cancel_partial(self.turn)
            out += self._words.drop_speculation(self.turn)
            self.turn.to(TurnState.CLEARED)
            self.turn = None
        self.buffer.clear()
        self._vad.position = self.buffer.end
        self._vad.reset()
        self._quiet.reset(self.buffer.end)
        out.append(se.Cleared())
        return out

    # --- engine results ----------------------------------------------------------------------------

    def on_result(self, result: TranscriptReady | JobFailed | TurnEndPredicted) -> list[Output]:
        if self._text.owns(result.job_id):
            assert not isinstance(result, TranscriptReady)
            self._text.on_result(result)
            return self._maybe_end_semantic_turn()
        if self._question is not None and result.job_id == self._question.job_id:
            assert not isinstance(result, TranscriptReady)
            return self._on_answer(result)
        if isinstance(result, TurnEndPredicted):
            return []  # the answer to a question dropped since: void by id
        out = self._words.on_result(result)
        if self._end_of_turn is not None:  # the text signal's LLM hears the words as they come
            out += [warm for output in out if isinstance(output, TurnHeard) for warm in self._text.warm(output.text)]
        if any(isinstance(output, TurnMayEnd) for output in out):
            out += self._maybe_end_semantic_turn()  # the words of the pause are known now
        return out
