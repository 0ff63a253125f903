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
the eagerness's maximum wait.
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
    END_OF_TURN_UNAVAILABLE,
    AudioIn,
    CancelJob,
    JobFailed,
    PredictTurnEnd,
    SessionInput,
    TranscriptReady,
    TurnEndPredicted,
)
from openrealtime.session.endpointing import EAGERNESS, END_OF_TURN, Eagerness, EndOfTurnPolicy, looks_complete
from openrealtime.session.eou_text import WAIT_PAUSE_MS as TEXT_WAIT_PAUSE_MS
from openrealtime.session.eou_text import TextSignal, WordsEndOfTurn
from openrealtime.session.frontend import ENGINE_RATE_HZ, AudioFrontEnd
from openrealtime.session.ids import Ids
from openrealtime.session.signals import Output, SpeechStarted, TurnCommitted, TurnHeard, TurnMayEnd
from openrealtime.session.states import TurnState
from openrealtime.session.turns import (
    PARTIAL_STEP_MS,
    Turn,
    TurnTranscriber,
    ms_to_samples,
    samples_to_ms,
    too_long_to_speculate,
)
from openrealtime.session.vad import SilenceStart, SpeechEnd, SpeechResumed, SpeechStart, VadEvent, VadTrack

MIN_COMMIT_MS = 100
MAX_BUFFER_S = 600  # uncommitted audio held at most (OpenAI was seen holding 305 s)
MS_PER_S = 1000
DEFAULT_PREFIX_PADDING_MS = 300
DEFAULT_SILENCE_MS = 500  # manual mode: pauses only matter for speculation and live captions
INITIAL_SILENCE_MS = 200  # the detector's pause before the first configure sets the session's
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
# ... and 0.6 times it (300 ms at medium) where the LLM reads them as a whole message clearly
# (eou_text.CLEAR_ABOVE): the clip ends Smart Turn misjudges, about two in five of bench turns'.
CLEAR_PAUSE_FACTOR = 0.6


@dataclass(frozen=True)
class _Question:
    """An end-of-turn question in flight: its job, and the pause it was asked in."""

    job_id: str
    pause_start: int


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


class InputAudioBuffer:
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
        self._words = TurnTranscriber(
            self.buffer, ids, always=options.always_transcribe, partial_step_ms=options.partial_step_ms
        )
        self.turn: Turn | None = None
        self._semantic: Eagerness | None = None  # the word rule's pauses (semantic_vad without a model)
        self._end_of_turn: EndOfTurnPolicy | None = None  # semantic_vad's use of the model
        self._model_missing = False  # the runtime said it has no end-of-turn model: use the word rule
        self._question: _Question | None = None
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
        out: list[Output] = []
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
            return self._words.flicker.paused_again(turn, event.sample)
        if isinstance(event, SpeechResumed) and turn.state is TurnState.PAUSED:
            turn.to(TurnState.SPEAKING)
            turn.pause_start = None
            # Perhaps a flicker on a last consonant: the pause's words and answer are kept a moment.
            return self._drop_question() + self._words.flicker.speech_resumed(turn, event.sample)
        if isinstance(event, SpeechEnd) and self.vad_enabled:
            stopped = se.SpeechStopped(audio_end_ms=samples_to_ms(event.sample), item_id=turn.item_id)
            return [stopped, *self._commit_turn(turn, end=event.sample, speech_end=event.speech_end)]
        return []

    def _maybe_end_semantic_turn(self) -> list[Output]:
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

    def _ask_text(self, turn: Turn) -> list[Output]:
        """Ask the LLM about the pause's words once they are known and read as finished (only then
        does the text signal decide anything)."""
        words = self._transcript(turn)
        if words is None or not looks_complete(words):
            return []
        return list(self._text.ask(turn.item_id, words))

    def _on_answer(self, result: TurnEndPredicted | JobFailed) -> list[Output]:
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

    def _decide(self, turn: Turn) -> list[Output]:
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
            waited = samples_to_ms(self._vad.position - turn.pause_start) >= TEXT_WAIT_PAUSE_MS
            if text is not TextSignal.GOES_ON and (text is not TextSignal.PENDING or waited):
                return self._end_turn_in_pause(turn)
        return self._maybe_end_by_words()

    def _transcript(self, turn: Turn) -> str | None:
        """The turn's words up to this pause, once known: the speculative final decode of the whole
        turn, or for a turn too long to decode whole at each pause, its live captions' newest words."""
        if turn.final_result is None and too_long_to_speculate(turn) and turn.heard:
            return " ".join([*turn.captions.frozen, turn.heard])
        return turn.final_result

    def _maybe_end_by_words(self) -> list[Output]:
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

    def _end_turn_in_pause(self, turn: Turn) -> list[Output]:
        assert turn.pause_start is not None
        position = self._vad.position
        self._vad.detector.reset()
        stopped = se.SpeechStopped(audio_end_ms=samples_to_ms(position), item_id=turn.item_id)
        return [stopped, *self._commit_turn(turn, end=position, speech_end=turn.pause_start)]

    def _drop_question(self) -> list[Output]:
        """The pause is over (speech, a commit, a clear): its question, if in flight, is void."""
        self._asked_at = 0
        self._probability = None
        if self._question is None:
            return []
        job_id, self._question = self._question.job_id, None
        return [CancelJob(job_id)]

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
