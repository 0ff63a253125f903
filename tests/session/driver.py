"""Drive a sans-I/O session with scripted client events, answering its commands with fake engines."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from openrealtime.engines.fake import FakeTranscriber
from openrealtime.exceptions import EngineError
from openrealtime.protocol.codec import SessionKind, server_event_dict
from openrealtime.runtime.wire import ClientFrames
from openrealtime.session.commands import (
    END_OF_TURN_TEXT_UNAVAILABLE,
    END_OF_TURN_UNAVAILABLE,
    CancelJob,
    JobFailed,
    PredictTurnEnd,
    ScoreTurnWords,
    Transcribe,
    TranscriptReady,
    TurnEndPredicted,
    WarmAnswer,
    WarmTurnWords,
)
from openrealtime.session.transcription import TranscriptionSession

CHUNK_SAMPLES = 2400  # 100 ms at 24 kHz


def wire(event: Any) -> dict[str, Any]:
    """A server event as the client sees it, without the random ``event_id``."""
    body = server_event_dict(event, "event_x")
    del body["event_id"]
    return body


def error_event(code: str, message: str, param: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    """The wire form of a refused client event (``invalid_request_error``)."""
    return {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


class Driver:
    """Feeds a session; by default answers every Transcribe at once (``hold=True`` keeps them).

    End-of-turn questions are answered by ``end_of_turn`` (a fake model) at once, or kept in
    ``questions`` when ``hold_questions`` is set; without a model they fail as on a server that has
    none (the session then uses its word rule). The text signal's questions (``ScoreTurnWords``) are
    answered by ``end_of_turn_text`` (words -> probability) at once, or kept in ``word_questions`` when
    ``hold_words`` is set; without it they fail as on a server whose LLM gives none.
    """

    def __init__(
        self,
        session: TranscriptionSession,
        asr: FakeTranscriber | None = None,
        *,
        hold: bool = False,
        end_of_turn: Any = None,
        hold_questions: bool = False,
        end_of_turn_text: Any = None,
        hold_words: bool = False,
    ):
        self.session = session
        self.end_of_turn = end_of_turn
        self.hold_questions = hold_questions
        self.questions: list[PredictTurnEnd] = []
        self.end_of_turn_text = end_of_turn_text
        self.hold_words = hold_words
        self.word_questions: list[ScoreTurnWords] = []
        self.frames = ClientFrames(SessionKind.TRANSCRIPTION)
        self.asr = asr or FakeTranscriber()
        self.hold = hold
        self.held: list[Transcribe] = []
        self.cancelled: list[str] = []
        self.warmed: list[WarmAnswer | WarmTurnWords] = []  # warmings asked for (no result)
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            parsed = self.frames.parse(json.dumps(event), self.session.input_format)
        except Exception as exc:  # a ProtocolError from the codec or the audio, as the runtime reports it
            self.session.error(exc)  # type: ignore[arg-type]
        else:
            self.session.receive(parsed)
        return self.pump()

    def append(self, samples: np.ndarray) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        for i in range(0, len(data), CHUNK_SAMPLES * 2):
            chunk = base64.b64encode(data[i : i + CHUNK_SAMPLES * 2]).decode()
            out += self.send({"type": "input_audio_buffer.append", "audio": chunk})
        return out

    def resolve(self, command: Transcribe, *, fail: bool = False) -> list[dict[str, Any]]:
        if fail:
            self.session.on_result(JobFailed(command.job_id, "transcription_failed", "boom"))
        else:
            self.session.on_result(TranscriptReady(command.job_id, self.asr.transcribe(command.audio, command.options)))
        return self.pump()

    def answer_questions(self, probability: float | None = None) -> None:
        """Answer the end-of-turn questions kept so far (``probability`` overrides the model)."""
        questions, self.questions = self.questions, []
        for question in questions:
            if question.job_id in self.cancelled:
                continue
            if probability is None and self.end_of_turn is None:
                message = "no end-of-turn model"
                self.session.on_result(JobFailed(question.job_id, END_OF_TURN_UNAVAILABLE, message))
                continue
            p = probability if probability is not None else self.end_of_turn.completion_probability(question.audio)
            self.session.on_result(TurnEndPredicted(question.job_id, p))

    def answer_words(self) -> None:
        """Answer the text signal's questions kept so far."""
        questions, self.word_questions = self.word_questions, []
        for question in questions:
            if self.end_of_turn_text is None:
                self.session.on_result(JobFailed(question.job_id, END_OF_TURN_TEXT_UNAVAILABLE, "no text signal"))
            else:
                self.session.on_result(TurnEndPredicted(question.job_id, self.end_of_turn_text(question.words)))

    def pump(self) -> list[dict[str, Any]]:
        produced: list[dict[str, Any]] = []
        while True:
            events, commands = self.session.drain()
            produced += [wire(e) for e in events]
            jobs = []
            for command in commands:
                if isinstance(command, CancelJob):
                    self.cancelled.append(command.job_id)
                    self.held = [h for h in self.held if h.job_id != command.job_id]
                elif isinstance(command, Transcribe):
                    jobs.append(command)
                elif isinstance(command, PredictTurnEnd):
                    self.questions.append(command)
                elif isinstance(command, ScoreTurnWords):
                    self.word_questions.append(command)
                elif isinstance(command, WarmAnswer | WarmTurnWords):
                    self.warmed.append(command)
            asked = bool(self.questions) and not self.hold_questions
            if asked:
                self.answer_questions()
            if self.word_questions and not self.hold_words:
                self.answer_words()
                asked = True
            if self.hold:
                self.held += jobs
                if asked:
                    continue
                break
            if not jobs and not asked:
                break
            for job in jobs:
                try:
                    result: TranscriptReady | JobFailed = TranscriptReady(
                        job.job_id, self.asr.transcribe(job.audio, job.options)
                    )
                except EngineError as exc:
                    result = JobFailed(job.job_id, exc.code, exc.message)
                self.session.on_result(result)
        self.events += produced
        return produced


class RealtimeDriver(Driver):
    """Also answers LLM and TTS commands with fakes; ``hold_tts`` keeps speech jobs for the test."""

    def __init__(
        self,
        session: Any,
        *,
        chat: Any = None,
        tts: Any = None,
        hold_tts: bool = False,
        hold_llm: bool = False,
        end_of_turn: Any = None,
        hold_questions: bool = False,
        end_of_turn_text: Any = None,
        hold_words: bool = False,
    ) -> None:
        from openrealtime.engines.fake import FakeChatModel, ToneSynthesizer

        super().__init__(
            session,
            end_of_turn=end_of_turn,
            hold_questions=hold_questions,
            end_of_turn_text=end_of_turn_text,
            hold_words=hold_words,
        )
        self.frames = ClientFrames(SessionKind.REALTIME)
        self.chat = chat or FakeChatModel()
        self.tts = tts or ToneSynthesizer()
        self.hold_tts = hold_tts
        self.hold_llm = hold_llm
        self.held_tts: list[Any] = []
        self.held_llm: list[Any] = []

    def run_llm(self, command: Any) -> None:
        import threading

        from openrealtime.session.commands import LlmChunk

        for chunk in self.chat.chat(command.request, threading.Event()):
            self.session.on_result(LlmChunk(command.job_id, chunk))

    def run_tts(self, command: Any, *, chunks: int | None = None) -> None:
        import threading

        from openrealtime.session.commands import AudioChunk, SynthesisDone

        for i, audio in enumerate(
            self.tts.synthesize(command.text, voice=command.voice or "x", stop=threading.Event())
        ):
            if chunks is not None and i >= chunks:
                return
            self.session.on_result(AudioChunk(command.job_id, audio, self.tts.sample_rate_hz))
        self.session.on_result(SynthesisDone(command.job_id))

    def pump(self) -> list[dict[str, Any]]:
        from openrealtime.session.commands import Generate, Synthesize

        produced: list[dict[str, Any]] = []
        while True:
            events, commands = self.session.drain()
            produced += [wire(e) for e in events]
            work = False
            for command in commands:
                if isinstance(command, CancelJob):
                    self.cancelled.append(command.job_id)
                    self.held_tts = [h for h in self.held_tts if h.job_id != command.job_id]
                    self.held_llm = [h for h in self.held_llm if h.job_id != command.job_id]
                elif isinstance(command, Transcribe):
                    work = True
                    try:
                        result: Any = TranscriptReady(
                            command.job_id, self.asr.transcribe(command.audio, command.options)
                        )
                    except EngineError as exc:
                        result = JobFailed(command.job_id, exc.code, exc.message)
                    self.session.on_result(result)
                elif isinstance(command, Generate):
                    if self.hold_llm:
                        self.held_llm.append(command)
                    else:
                        work = True
                        self.run_llm(command)
                elif isinstance(command, Synthesize):
                    if self.hold_tts:
                        self.held_tts.append(command)
                    else:
                        work = True
                        self.run_tts(command)
                elif isinstance(command, PredictTurnEnd):
                    self.questions.append(command)
                elif isinstance(command, ScoreTurnWords):
                    self.word_questions.append(command)
                elif isinstance(command, WarmAnswer | WarmTurnWords):
                    self.warmed.append(command)
            if self.questions and not self.hold_questions:
                work = True
                self.answer_questions()
            if self.word_questions and not self.hold_words:
                work = True
                self.answer_words()
            if not work:
                break
        self.events += produced
        return produced
