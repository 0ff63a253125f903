"""Turn detection hysteresis over frame speech probabilities (the model lives in ``engines``).

:class:`TurnDetector` is the hysteresis alone, fed one probability at a time; :class:`VadTrack` runs a
VAD stream and a detector over a growing sample buffer, every new whole frame in one model call, and
is what the input buffer and the translation segmenter both use.

Speech starts after ``START_SPEECH_MS`` of frames at or above the threshold; during speech, frames down
to ``threshold - HYSTERESIS`` still count as speech (Silero's negative threshold), and the turn ends
after ``silence_duration_ms`` of frames below that. Positions are absolute sample indices.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.contracts import VadModel

START_SPEECH_MS = 64
HYSTERESIS = 0.15
MIN_NEGATIVE_THRESHOLD = 0.01


class VadState(enum.Enum):
    SILENCE = "silence"
    SPEECH = "speech"


@dataclass(frozen=True)
class SpeechStart:
    """Speech began at ``sample`` (first frame of the run that triggered it)."""

    sample: int


@dataclass(frozen=True)
class SilenceStart:
    """A pause began at ``sample``; the turn may end (speculation can start)."""

    sample: int


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back before the pause reached ``silence_duration_ms``."""

    sample: int


@dataclass(frozen=True)
class SpeechEnd:
    """The pause that began at ``speech_end`` lasted ``silence_duration_ms``, ending at ``sample``."""

    speech_end: int
    sample: int


VadEvent = SpeechStart | SilenceStart | SpeechResumed | SpeechEnd


class TurnDetector:
    """Hysteresis state machine fed one frame probability at a time."""

    def __init__(self, *, sample_rate_hz: int, frame_samples: int, threshold: float, silence_duration_ms: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = frame_samples
        self.state = VadState.SILENCE
        self.start_samples = START_SPEECH_MS * sample_rate_hz // 1000  # speech that starts a turn
        self.configure(threshold=threshold, silence_duration_ms=silence_duration_ms)
        self._run_start: int | None = None  # start of the current run of speech frames (in SILENCE)
        self._pause_start: int | None = None  # start of the current pause (in SPEECH)

    def configure(self, *, threshold: float, silence_duration_ms: int) -> None:
        self.threshold = threshold
        self.negative_threshold = max(MIN_NEGATIVE_THRESHOLD, threshold - HYSTERESIS)
        self.silence_samples = silence_duration_ms * self.sample_rate_hz // 1000

    def reset(self) -> None:
        self.state = VadState.SILENCE
        self._run_start = None
        self._pause_start = None

    def feed(self, frame_start: int, probability: float) -> list[VadEvent]:
        frame_end = frame_start + self.frame_samples
        if self.state is VadState.SILENCE:
            if probability >= self.threshold:
                if self._run_start is None:
                    self._run_start = frame_start
                if frame_end - self._run_start >= self.start_samples:
                    self.state = VadState.SPEECH
                    start, self._run_start = self._run_start, None
                    return [SpeechStart(start)]
            else:
                self._run_start = None
            return []
        if probability >= self.negative_threshold:
            if self._pause_start is not None:
                self._pause_start = None
                return [SpeechResumed(frame_start)]
            return []
        events: list[VadEvent] = []
        if self._pause_start is None:
            self._pause_start = frame_start
            events.append(SilenceStart(frame_start))
        if frame_end - self._pause_start >= self.silence_samples:
            self.state = VadState.SILENCE
            events.append(SpeechEnd(speech_end=self._pause_start, sample=frame_end))
            self._pause_start = None
        return events


@dataclass(frozen=True)
class Frame:
    """One VAD frame: where it starts, its speech probability and the turn events it caused."""

    start: int
    probability: float
    events: list[VadEvent]


class VadTrack:
    """A VAD stream and its hysteresis over a growing buffer, addressed by absolute sample index.

    Args:
        vad: The frame-level speech model (its ``frame_samples`` at ``sample_rate_hz``).
        sample_rate_hz: The buffer's rate.
        threshold: Speech probability that starts speech.
        silence_duration_ms: Pause that ends it.
    """

    def __init__(self, vad: VadModel, *, sample_rate_hz: int, threshold: float, silence_duration_ms: int) -> None:
        self._model = vad
        self._stream = vad.new_stream()
        self.frame_samples = vad.frame_samples
        self.detector = TurnDetector(
            sample_rate_hz=sample_rate_hz,
            frame_samples=vad.frame_samples,
            threshold=threshold,
            silence_duration_ms=silence_duration_ms,
        )
        self.position = 0  # where the next frame starts

    def scan(self, buffer: SampleBuffer) -> Iterator[Frame]:
        """The whole frames of ``buffer`` not scanned yet, one model call for all of them.

        The hysteresis still runs frame by frame, exactly as if the frames had come one at a time;
        :attr:`position` moves past each frame as it is handed out.
        """
        first = max(self.position, buffer.start)
        count = (buffer.end - first) // self.frame_samples
        if not count:
            return
        probabilities = self._stream.probabilities(buffer.view(first, first + count * self.frame_samples))
        for index, probability in enumerate(probabilities):
            start = first + index * self.frame_samples
            self.position = start + self.frame_samples
            yield Frame(start, probability, self.detector.feed(start, probability))

    def reset(self) -> None:
        """Forget the model's recurrent state and the hysteresis (``input_audio_buffer.clear``)."""
        self.detector.reset()
        self._stream.reset()
