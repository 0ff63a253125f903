"""Commands a session asks its runtime to carry out; each carries the id its results will carry."""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.audio.types import Samples
from openrealtime.engines.protocols import TranscribeOptions, Transcript


@dataclass(frozen=True)
class Transcribe:
    """Decode ``audio`` (16 kHz) for ``item_id``; ``final`` decodes outrank live-caption partials."""

    job_id: str
    item_id: str
    audio: Samples
    options: TranscribeOptions
    final: bool


@dataclass(frozen=True)
class CancelJob:
    """Stop working on ``job_id``; any result that still arrives for it is dropped by the session."""

    job_id: str


@dataclass(frozen=True)
class CloseConnection:
    """Close the WebSocket after the events queued before this command are sent."""

    code: int
    reason: str


@dataclass(frozen=True)
class TranscriptReady:
    """Engine result: the decode of job ``job_id``."""

    job_id: str
    transcript: Transcript


@dataclass(frozen=True)
class JobFailed:
    """Engine result: job ``job_id`` raised an :class:`~openrealtime.exceptions.EngineError`."""

    job_id: str
    code: str
    message: str
