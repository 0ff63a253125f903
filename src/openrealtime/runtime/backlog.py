"""A connection's transcription work, bounded (issue 10 defect 4).

Audio sent faster than real time once queued turns without end in the shared ASR worker. The runtime
decides, not the session: it is the one place that sees every session kind's jobs (transcription,
realtime, translation) from start to result, and what it bounds is what those jobs hold, their audio,
in the worker shared by the process.

A connection has at most ``MAX_PENDING_TRANSCRIPTIONS`` decodes started and not yet answered; a
live-caption partial starts only while fewer than ``MAX_PENDING_FOR_PARTIAL`` are (captions slow down
first). A decode over the bound is refused at once: the session gets it back as a failed job (so a
final becomes ``...input_audio_transcription.failed`` with code ``transcription_backlog_full``, and
the turn's audio is dropped), and the first final refused after one was accepted also sends an
``error`` telling the client that it sends audio faster than it can be transcribed. The connection
stays open: a client that slows down to real time gets its transcripts again.

Before that bound, a client whose audio runs far ahead of real time is bulk work
(:mod:`~openrealtime.runtime.input_pace`): its decodes run as such, and it is paced by them (its
connection reads no more of its frames while a few of them wait).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

from openrealtime.exceptions import EngineError, ProtocolError
from openrealtime.runtime.input_pace import InputPace
from openrealtime.session.commands import Transcribe

log = logging.getLogger(__name__)

# Decodes a connection may have started and not yet answered, of which partials only the first four. A
# real-time speaker has one or two (this turn's partial or speculative final, the last turn's final);
# eight means the ASR is several turns behind this client, which is then sending faster than real time.
MAX_PENDING_TRANSCRIPTIONS = 8
MAX_PENDING_FOR_PARTIAL = 4
BACKLOG_CODE = "transcription_backlog_full"


class TranscriptionBacklog:
    """One connection's decodes in flight, and the pace of its input audio.

    Args:
        tell: Sends the session an ``error`` (the first refusal of an episode).
    """

    def __init__(self, tell: Callable[[ProtocolError], None]) -> None:
        self._tell = tell
        self._pending: set[str] = set()  # decodes started and not yet answered
        self._told = False  # the client has been told its audio outruns transcription
        self.pace = InputPace()

    def received(self, audio_s: float) -> None:
        """``audio_s`` seconds of input audio arrived now."""
        self.pace.received(audio_s, time.monotonic())

    def bulk(self) -> bool:
        """Whether the input runs far ahead of real time now (its decodes are bulk work)."""
        return self.pace.bulk(time.monotonic())

    async def room(self) -> None:
        """Before the connection reads its next frame: a bulk sender waits for one of its decodes."""
        await self.pace.room(len(self._pending))

    def admit(self, command: Transcribe) -> AsyncIterator[object] | None:
        """``None`` if ``command`` may start (it is counted until :meth:`ended`); else its refusal, a
        job that fails at once."""
        pending = len(self._pending)
        if pending < (MAX_PENDING_TRANSCRIPTIONS if command.final else MAX_PENDING_FOR_PARTIAL):
            if command.final:
                self._told = False
            self._pending.add(command.job_id)
            return None
        message = (
            f"Input audio arrives faster than it can be transcribed: {pending} transcriptions of this "
            "session are waiting already. Send audio at real-time pace."
        )
        if command.final and not self._told:  # once an episode: a flood would flood the log too
            log.warning("transcription backlog full (%d pending); refusing final decodes", pending)
            self._told = True
            self._tell(ProtocolError(message, code=BACKLOG_CODE))
        return _refused(EngineError(f"{message} This turn's audio was dropped.", code=BACKLOG_CODE))

    def ended(self, job_id: str) -> None:
        """A job ended (answered, failed or cancelled); not a decode of ours: nothing."""
        if job_id in self._pending:
            self._pending.discard(job_id)
            self.pace.decoded()


async def _refused(error: EngineError) -> AsyncIterator[object]:
    """A job refused before it started: it fails, through the same path as an engine failure."""
    raise error
    yield  # pragma: no cover - makes this an async generator
