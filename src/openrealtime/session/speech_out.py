"""Translated pieces on their way out, the back half of simultaneous translation: text, then speech.

Each piece of source text waits for its translation (a job of the session's choosing, or none when the
source is passed through), then is spoken (``Synthesize``, one piece at a time). Transcript deltas and
audio leave strictly in piece order, whatever order the engines finish in; results of unknown jobs are
not taken here.

Translated speech that runs longer than the speech it translates would leave the listener further and
further behind, so this part keeps a model of the listener's playback (audio time only: the end of
what was sent, against the input time consumed) and asks for faster speech while that backlog is large.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from openrealtime.audio.codec import AudioFormat, AudioOut
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import (
    AudioChunk,
    Command,
    EngineResult,
    JobFailed,
    PlayAudio,
    SynthesisDone,
    Synthesize,
    TextTranslated,
    TranscriptReady,
)
from openrealtime.session.ids import Ids

OUTPUT_RATE_HZ = 24_000
MS_PER_S = 1000
# Playback catch-up: above CATCH_UP_AFTER_MS of unplayed translated speech, speak faster, reaching
# MAX_SPEED at CATCH_UP_AFTER_MS + CATCH_UP_SPAN_MS.
CATCH_UP_AFTER_MS = 750
CATCH_UP_SPAN_MS = 2250
MAX_SPEED = 1.35
# The listener is waiting once this long has passed with nothing to hear and nothing on its way.
EAGER_AFTER_MS = 1000

SpeechOutput = se.ServerEvent | Command
# A translation call's speech is one endless stream: no responses, no items, nothing to truncate.
PLAYBACK_STREAM = "translation"


@dataclass
class _Piece:
    """One clause on its way out: translated text, then speech."""

    source: str
    target: str
    voice_language: str
    text: str | None = None  # the translation, once known
    transcript_sent: bool = False
    audio_done: bool = False
    resampler: StreamResampler | None = None


def continue_case(source: str, translation: str) -> str:
    """A piece that continues a sentence keeps a lower-case start (MT engines capitalize every input)."""
    if source[:1].islower() and translation[:1].isupper() and not translation[1:2].isupper():
        return translation[0].lower() + translation[1:]
    return translation


def spaced(delta: str, started: bool) -> str:
    """Deltas are append-only and the client must not add spaces: put the space in the delta."""
    return " " + delta if started and delta and not delta[0].isspace() else delta


class SpeechOut:
    """The queue of translated pieces; each call returns its server events and commands, in order.

    Times are the session's input time (``elapsed_ms``), handed in with each call.

    Args:
        ids: Id source for synthesis jobs (the session's, so ids follow one sequence).
        server_playback: The server plays the speech (a WebRTC call): ``PlayAudio`` commands of the
            stream ``PLAYBACK_STREAM`` instead of ``session.output_audio.delta`` events.
    """

    def __init__(self, ids: Ids, *, server_playback: bool = False) -> None:
        self._ids = ids
        self._server_playback = server_playback
        self._pieces: deque[_Piece] = deque()
        self._jobs: dict[str, _Piece] = {}
        self._synth_job: str | None = None
        self._started = False  # some translated text went out: later deltas start with a space
        self._play_end_ms = 0  # where the listener's playback of what was sent ends

    @property
    def idle(self) -> bool:
        """Every piece is out: its transcript sent, its speech done."""
        return not self._pieces

    def listener_idle(self, elapsed_ms: int) -> bool:
        """Nothing on its way and nothing heard for ``EAGER_AFTER_MS``: now finer cuts buy latency."""
        return not self._pieces and elapsed_ms - self._play_end_ms >= EAGER_AFTER_MS

    def owns(self, job_id: str) -> bool:
        return job_id in self._jobs

    def add(self, source: str, *, target: str, voice_language: str, job_id: str | None) -> None:
        """Queue a piece of source text, translated by job ``job_id`` or, when ``None``, spoken as is."""
        piece = _Piece(source=source, target=target, voice_language=voice_language)
        if job_id is None:
            piece.text = source
        else:
            self._jobs[job_id] = piece
        self._pieces.append(piece)

    def on_result(self, result: EngineResult, elapsed_ms: int) -> list[SpeechOutput]:
        """Take the result of a translation or synthesis job of :meth:`owns`; then send what is ready."""
        job_id = getattr(result, "job_id", None)
        piece = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if piece is None:
            return []
        out: list[SpeechOutput] = []
        match result:
            case TextTranslated(text=text):
                del self._jobs[result.job_id]
                piece.text = continue_case(piece.source, " ".join(text.split()))
            case TranscriptReady(transcript=transcript):  # speech translation of a whole utterance
                del self._jobs[result.job_id]
                piece.text = " ".join(transcript.text.split())
            case AudioChunk(audio=audio, sample_rate_hz=rate) if result.job_id == self._synth_job:
                out += self._audio(piece, audio, rate, elapsed_ms)
            case SynthesisDone() if result.job_id == self._synth_job:
                del self._jobs[result.job_id]
                if piece.resampler is not None:
                    out += self._audio(piece, piece.resampler.flush(), OUTPUT_RATE_HZ, elapsed_ms, resample=False)
                piece.audio_done = True
                self._synth_job = None
            case JobFailed(code=code, message=message):
                del self._jobs[result.job_id]
                out.append(
                    se.Error(
                        error=se.ErrorDetail(type="server_error", code=code, message=message, param=None, event_id=None)
                    )
                )
                if result.job_id == self._synth_job:
                    piece.audio_done = True
                    self._synth_job = None
                else:  # its translation: the piece is left out
                    piece.text = ""
                    piece.audio_done = True
        return out + self.advance(elapsed_ms)

    def advance(self, elapsed_ms: int) -> list[SpeechOutput]:
        """Send the transcripts that are ready, in piece order; start the next synthesis."""
        out: list[SpeechOutput] = []
        for p in self._pieces:
            if p.text is None:
                break
            if not p.transcript_sent:
                if p.text:
                    out.append(se.OutputTranscriptDelta(delta=spaced(p.text, self._started), elapsed_ms=elapsed_ms))
                    self._started = True
                p.transcript_sent = True
        if self._synth_job is None:
            for p in self._pieces:
                if p.audio_done:
                    continue
                if p.text is None:
                    break
                if not p.text:
                    p.audio_done = True
                    continue
                job_id = self._ids.new("job")
                self._jobs[job_id] = p
                self._synth_job = job_id
                speed = self._speed(elapsed_ms)
                out.append(Synthesize(job_id, p.text, language=p.target, voice=p.voice_language, speed=speed))
                break
        while self._pieces and self._pieces[0].transcript_sent and self._pieces[0].audio_done:
            self._pieces.popleft()
        return out

    def _speed(self, elapsed_ms: int) -> float:
        backlog_ms = self._play_end_ms - elapsed_ms
        excess = min(1.0, max(0.0, (backlog_ms - CATCH_UP_AFTER_MS) / CATCH_UP_SPAN_MS))
        return round(1.0 + excess * (MAX_SPEED - 1.0), 2)

    def _audio(
        self, piece: _Piece, audio: Samples, rate_hz: int, elapsed_ms: int, *, resample: bool = True
    ) -> list[SpeechOutput]:
        if resample and rate_hz != OUTPUT_RATE_HZ:
            if piece.resampler is None or piece.resampler.in_rate_hz != rate_hz:
                piece.resampler = StreamResampler(rate_hz, OUTPUT_RATE_HZ)
            audio = piece.resampler.process(audio)
        if not audio.size:
            return []
        duration_ms = audio.size * MS_PER_S // OUTPUT_RATE_HZ
        self._play_end_ms = max(self._play_end_ms, elapsed_ms) + duration_ms
        if self._server_playback:
            return [PlayAudio(PLAYBACK_STREAM, PLAYBACK_STREAM, audio)]
        delta = AudioOut(audio, AudioFormat.PCM)
        return [se.TranslationAudioDelta(audio=delta, elapsed_ms=elapsed_ms, sample_rate=OUTPUT_RATE_HZ, channels=1)]
