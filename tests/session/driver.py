"""Drive a sans-I/O session with scripted client events, answering its commands with fake engines."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from openrealtime.engines.fake import FakeTranscriber
from openrealtime.exceptions import EngineError
from openrealtime.protocol.codec import SessionKind, parse_client_event, server_event_dict
from openrealtime.session.commands import CancelJob, JobFailed, Transcribe, TranscriptReady
from openrealtime.session.transcription import TranscriptionSession

CHUNK_SAMPLES = 2400  # 100 ms at 24 kHz


def wire(event: Any) -> dict[str, Any]:
    """A server event as the client sees it, without the random ``event_id``."""
    body = server_event_dict(event, "event_x")
    del body["event_id"]
    return body


class Driver:
    """Feeds a session; by default answers every Transcribe at once (``hold=True`` keeps them)."""

    def __init__(
        self, session: TranscriptionSession, asr: FakeTranscriber | None = None, *, hold: bool = False
    ):
        self.session = session
        self.asr = asr or FakeTranscriber()
        self.hold = hold
        self.held: list[Transcribe] = []
        self.cancelled: list[str] = []
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = SessionKind.TRANSCRIPTION
        try:
            parsed = parse_client_event(json.dumps(event), kind)
        except Exception as exc:  # a ProtocolError from the codec, as the runtime would report it
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
            self.session.on_result(
                TranscriptReady(command.job_id, self.asr.transcribe(command.audio, command.options))
            )
        return self.pump()

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
            if self.hold:
                self.held += jobs
                break
            if not jobs:
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
