"""Commands a session asks its runtime to carry out; each carries the id its results will carry."""

from __future__ import annotations

from dataclasses import dataclass

from openrealtime.audio.types import Samples
from openrealtime.engines.protocols import ChatChunk, ChatRequest, TranscribeOptions, Transcript


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


@dataclass(frozen=True)
class Synthesize:
    """Speak ``text`` with ``voice`` (a voice name, or a language code for multilingual TTS)."""

    job_id: str
    text: str
    voice: str
    language: str = "en"


@dataclass(frozen=True)
class AudioChunk:
    """Engine result: a piece of synthesized speech for job ``job_id``."""

    job_id: str
    samples: Samples
    sample_rate_hz: int


@dataclass(frozen=True)
class SynthesisDone:
    """Engine result: job ``job_id`` has produced all its audio."""

    job_id: str


@dataclass(frozen=True)
class Generate:
    """Stream a chat completion for ``request`` (the LLM stage of a response)."""

    job_id: str
    request: ChatRequest


@dataclass(frozen=True)
class LlmChunk:
    """Engine result: one streamed piece of the completion of job ``job_id``."""

    job_id: str
    chunk: ChatChunk
