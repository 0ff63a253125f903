"""Translation sessions (``/v1/realtime/translations``, reference section 8), sans-I/O.

An interpreter, not a turn-taker: audio comes in continuously and translated speech goes out while the
speaker is still talking. The front half, :class:`~openrealtime.session.segmenter.SpeechSegmenter`,
turns the input into stable source-text pieces of about a clause; the back half,
:class:`~openrealtime.session.speech_out.SpeechOut`, translates and speaks them in order, paced to the
listener. This module owns the protocol around them and the route between them:

* ``session.input_audio_buffer.append`` carries 24 kHz PCM16 of any length; it is consumed in 200 ms
  frames (9 600 bytes), and ``elapsed_ms`` is the count of consumed frames times 200. Gaps between
  appends are not pauses: the audio is contiguous, whatever the wall clock did.
* each piece is translated (``TranslateText``; or Whisper's translate task on the utterance's audio
  for speech into English; or passed through when the speaker already speaks the target language),
  then spoken; a language pair no engine serves is an ``unsupported_language`` error, once per pair.
  Results of unknown jobs are dropped by id.
* ``session.close`` flushes: the last partial frame, the final decode of the utterance being spoken,
  every pending translation and synthesis; then ``session.closed`` and a ``CloseConnection(1000)``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
from pydantic import ValidationError

from openrealtime.audio.buffer import SampleBuffer
from openrealtime.audio.codec import AudioFormat
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions
from openrealtime.exceptions import InvalidStateError, ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import validation_error
from openrealtime.protocol.config import TranslationSessionConfig, merge_update
from openrealtime.session.commands import (
    AudioIn,
    CloseConnection,
    EngineResult,
    JobFailed,
    SessionInput,
    Transcribe,
    TranscriptReady,
    TranslateText,
)
from openrealtime.session.frontend import AudioFrontEnd
from openrealtime.session.pieces import Piece
from openrealtime.session.segmenter import SegmenterOutput, SpeechSegmenter
from openrealtime.session.shell import SessionEngines, SessionShell
from openrealtime.session.speech_out import SpeechOut, spaced
from openrealtime.session.transcription import SESSION_LIFETIME_S

WIRE_RATE_HZ = 24_000
FRAME_MS = 200  # the engine frame of OpenAI's translation sessions
FRAME_SAMPLES = WIRE_RATE_HZ * FRAME_MS // 1000  # 4 800 samples (9 600 bytes of PCM16)
MAX_PENDING_SAMPLES = 8 * 1024 * 1024  # one append of the largest size OpenAI allows, and a frame
CLOSE_NORMAL = 1000
DEFAULT_SOURCE_LANGUAGE = "en"
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,8})*$", re.IGNORECASE)


class Route(enum.StrEnum):
    """How speech in one language becomes text in another."""

    PASS_THROUGH = "pass_through"  # the source already is the target: speak the source text
    TEXT = "text"  # a text translator (Apertium, an LLM)
    SPEECH = "speech"  # Whisper's translate task on the utterance's audio (into English only)


def language_base(code: str) -> str:
    """``"es-ES"`` / ``"pt_BR"`` / ``" EN "`` -> ``"es"`` / ``"pt"`` / ``"en"``."""
    return re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]


@dataclass(frozen=True)
class TranslationInfo:
    """What a translation session knows of its server: ids, clock, model and engine coverage.

    Attributes:
        session_id: ``sess_...``.
        created_at_s: Unix time of creation.
        model: The model named at connect (echoed, like OpenAI's ``gpt-realtime-translate``).
        route: How speech in ``source`` becomes text in ``target`` (distinct base codes), or ``None``
            when no configured engine can do it.
        can_speak: Whether a TTS voice speaks a language code.
        multilingual: Whether the ASR detects the source language (otherwise it is always English).
        accepts_model: Whether a transcription model name is served here.
        lifetime_s: The session's maximum duration (``expires_at`` is that long after creation).
    """

    session_id: str
    created_at_s: int
    model: str
    route: Callable[[str, str], Route | None]
    can_speak: Callable[[str], bool]
    multilingual: bool
    accepts_model: Callable[[str], bool]
    lifetime_s: int = SESSION_LIFETIME_S
    server_playback: bool = False  # a WebRTC call: the server plays the translated speech


class TranslationSession(SessionShell):
    """One translation session's protocol state (same shape as the transcription session).

    Args:
        info: Ids, clock and what the engines cover.
        engines: ``vad``, ``noise`` and ``ids`` (:class:`~openrealtime.session.shell.SessionEngines`).
    """

    def __init__(self, info: TranslationInfo, **engines: Unpack[SessionEngines]) -> None:
        super().__init__(**engines)
        self.info = info
        self.config = TranslationSessionConfig()
        self._pending = SampleBuffer(max_samples=MAX_PENDING_SAMPLES)  # less than a frame, between appends
        self._to_wire: StreamResampler | None = None  # input at another rate than the wire's (calls)
        self._frames = 0
        self._frontend = AudioFrontEnd(self._noise)
        self._segmenter = SpeechSegmenter(
            vad=self._vad,
            ids=self._ids,
            language=None if info.multilingual else DEFAULT_SOURCE_LANGUAGE,
            whole_utterances=lambda source: self._route(source) is Route.SPEECH,
            eager=lambda: self._speech.listener_idle(self.elapsed_ms),
        )
        self._speech = SpeechOut(self._ids, server_playback=info.server_playback)
        self._input_started = False
        self._refused: set[tuple[str, str]] = set()
        self.closing = False
        self.closed = False
        self._told_closing_audio = False  # audio after session.close: one error, then dropped
        self._events.append(se.SessionCreated(session=self.effective_session()))

    # --- state -------------------------------------------------------------------------------------

    @property
    def elapsed_ms(self) -> int:
        """Input time consumed so far, in whole 200 ms frames."""
        return self._frames * FRAME_MS

    @property
    def target(self) -> str:
        return language_base(self.config.audio.output.language)

    def effective_session(self) -> dict[str, Any]:
        audio = self.config.audio
        nr = audio.input.noise_reduction
        transcription = audio.input.transcription
        return {
            "id": self.info.session_id,
            "type": "translation",
            "model": self.info.model,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
            "audio": {
                "input": {
                    "noise_reduction": nr.model_dump(mode="json", exclude_none=True) if nr else None,
                    "transcription": {"model": transcription.model} if transcription else None,
                },
                "output": {"language": audio.output.language},
            },
        }

    def _route(self, source: str) -> Route | None:
        source, target = language_base(source), self.target
        return Route.PASS_THROUGH if source == target else self.info.route(source, target)

    # --- inputs ------------------------------------------------------------------------------------

    def on_result(self, result: EngineResult) -> None:
        """Take an engine result; one of an unknown (cancelled, superseded) job is dropped."""
        job_id = getattr(result, "job_id", None)
        if isinstance(result, TranscriptReady | JobFailed) and self._segmenter.owns(result.job_id):
            self._pump(self._segmenter.on_result(result))
        elif isinstance(job_id, str) and self._speech.owns(job_id):
            self._take(self._speech.on_result(result, self.elapsed_ms))
            self._close_when_done()

    # --- client events -----------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        """Translation sessions take 24 kHz PCM16 (reference section 8)."""
        return AudioFormat.PCM

    def _dispatch(self, event: SessionInput) -> None:
        if self.closing and not isinstance(event, ce.SessionClose):
            if isinstance(event, AudioIn):
                # A call's microphone goes on streaming after its page closes the session: say so once.
                if self._told_closing_audio:
                    return
                self._told_closing_audio = True
            raise InvalidStateError(
                "The session is closing: no input is accepted after 'session.close'.",
                code="session_closing",
                event_id=event.event_id,
            )
        match event:
            case AudioIn(event=ce.TranslationAppend()):
                self._append(self._at_wire_rate(event.samples, event.rate_hz))
            case ce.TranslationSessionUpdate():
                self._update(event)
            case ce.SessionClose():
                if not self.closing:
                    self._close()
            case _:
                raise ProtocolError(
                    f"Invalid value: '{getattr(event, 'type', '?')}'. This event is not supported in "
                    "translation sessions.",
                    code="invalid_value",
                    param="type",
                    event_id=event.event_id,
                )

    def _update(self, event: ce.TranslationSessionUpdate) -> None:
        update = event.session.model_dump(mode="json", exclude_unset=True)
        fixed = {
            "type": "translation",
            "model": self.info.model,
            "id": self.info.session_id,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
        }
        for key, current in fixed.items():
            if update.get(key) not in (None, current):
                raise ProtocolError(
                    f"Invalid value: '{update[key]}'. 'session.{key}' is fixed when the session is "
                    "created and cannot be updated.",
                    code="invalid_value",
                    param=f"session.{key}",
                    event_id=event.event_id,
                )
        current = self.config.model_dump(mode="json")
        nr_update = update.get("audio", {}).get("input", {}).get("noise_reduction")
        merged = merge_update(current, update)
        old_nr = current["audio"]["input"]["noise_reduction"]
        if isinstance(nr_update, dict) and "strength" not in nr_update and old_nr:
            # "Omitting strength from a session update preserves the current strength" (SDK).
            merged["audio"]["input"]["noise_reduction"]["strength"] = old_nr.get("strength")
        try:
            config = TranslationSessionConfig.model_validate(merged)
        except ValidationError as exc:
            raise validation_error(exc, event.event_id) from None
        self._check_language(config.audio.output.language, event.event_id)
        transcription = config.audio.input.transcription
        if transcription is not None and not self.info.accepts_model(transcription.model):
            raise ProtocolError(
                f"Invalid value: '{transcription.model}'. This server has no transcription model of "
                "that name; use an OpenAI name (e.g. 'gpt-realtime-whisper') or a configured engine.",
                code="invalid_value",
                param="session.audio.input.transcription.model",
                event_id=event.event_id,
            )
        self._frontend.configure(config.audio.input.noise_reduction)
        self.config = config
        self._events.append(se.SessionUpdated(session=self.effective_session()))

    def _check_language(self, language: str, event_id: str | None) -> None:
        param = "session.audio.output.language"
        if not _LANGUAGE_CODE.match(language):
            raise ProtocolError(
                f"Invalid value: '{language}'. Expected a language code such as 'es' or 'pt-BR'.",
                code="invalid_value",
                param=param,
                event_id=event_id,
            )
        if not self.info.can_speak(language):
            raise ProtocolError(
                f"Unsupported output language '{language}': this server has no voice that speaks it.",
                code="unsupported_language",
                param=param,
                event_id=event_id,
            )
        target = language_base(language)
        source = DEFAULT_SOURCE_LANGUAGE
        if not self.info.multilingual and source != target and self.info.route(source, target) is None:
            raise ProtocolError(
                f"Unsupported language pair {source}->{target}: no translation engine of this server "
                f"translates English into '{language}' (configure an LLM translator, or pick a language "
                "that Apertium covers).",
                code="unsupported_language",
                param=param,
                event_id=event_id,
            )

    # --- audio in ----------------------------------------------------------------------------------

    def _at_wire_rate(self, samples: Samples, rate_hz: int) -> Samples:
        """Audio at the wire rate the frames are counted in: a call's track comes at 48 kHz (one
        stateful resampler per input rate, so chunk edges do not click)."""
        if rate_hz == WIRE_RATE_HZ:
            return samples
        if self._to_wire is None or self._to_wire.in_rate_hz != rate_hz:
            self._to_wire = StreamResampler(rate_hz, WIRE_RATE_HZ)
        return self._to_wire.process(samples)

    def _append(self, samples: Samples) -> None:
        pending = self._pending
        pending.append(samples)
        while pending.end - pending.start >= FRAME_SAMPLES:
            self._frame(pending.copy(pending.start, pending.start + FRAME_SAMPLES))
            pending.drop_before(pending.start + FRAME_SAMPLES)

    def _frame(self, samples: Samples, *, last: bool = False) -> None:
        self._frames += 1
        self._pump(self._segmenter.feed(self._frontend.process(samples, WIRE_RATE_HZ, last=last)))

    def _close(self) -> None:
        self.closing = True
        if self._to_wire is not None:
            self._pending.append(self._to_wire.flush())
        pending = self._pending
        rest = pending.copy(pending.start, pending.end)
        pending.clear()
        if rest.size:  # the last, partial frame is padded with silence to a whole one: frames are 200 ms
            self._frame(np.concatenate([rest, np.zeros(FRAME_SAMPLES - rest.size, np.float32)]), last=True)
        else:
            self._pump(self._segmenter.feed(self._frontend.flush()))
        self._pump(self._segmenter.flush())

    # --- pieces out --------------------------------------------------------------------------------

    def _pump(self, outputs: list[SegmenterOutput]) -> None:
        transcribing = self.config.audio.input.transcription is not None
        for output in outputs:
            if isinstance(output, Piece):
                self._add_piece(output)
            elif not isinstance(output, str):
                self._commands.append(output)
            elif transcribing and output:
                self._events.append(
                    se.InputTranscriptDelta(delta=spaced(output, self._input_started), elapsed_ms=self.elapsed_ms)
                )
                self._input_started = True
        self._take(self._speech.advance(self.elapsed_ms))
        self._close_when_done()

    def _add_piece(self, piece: Piece) -> None:
        source = language_base(piece.language)
        route = self._route(source)
        if route is None or (route is Route.SPEECH and piece.audio is None):
            pair = (source, self.target)
            if pair not in self._refused:
                self._refused.add(pair)
                self.error(
                    ProtocolError(
                        f"Unsupported language pair {source}->{self.target}: the speaker speaks '{source}' "
                        f"and no translation engine of this server translates it into "
                        f"'{self.config.audio.output.language}'.",
                        code="unsupported_language",
                        param="session.audio.output.language",
                    )
                )
            return
        target, voice_language = self.target, self.config.audio.output.language
        if route is Route.PASS_THROUGH:
            self._speech.add(piece.text, target=target, voice_language=voice_language, job_id=None)
            return
        job_id = self._ids.new("job")
        self._speech.add(piece.text, target=target, voice_language=voice_language, job_id=job_id)
        if route is Route.TEXT:
            self._commands.append(TranslateText(job_id, piece.text, source, target))
        else:
            assert piece.audio is not None
            options = TranscribeOptions(language=source, task="translate")
            self._commands.append(
                Transcribe(job_id=job_id, item_id=job_id, audio=piece.audio, options=options, final=True)
            )

    def _close_when_done(self) -> None:
        """After ``session.close``, once everything is out: ``session.closed``, then close the connection."""
        if self.closing and not self.closed and self._speech.idle and self._segmenter.idle:
            self.closed = True
            self._events.append(se.SessionClosed())
            self._commands.append(CloseConnection(CLOSE_NORMAL, ""))
