"""Whether a connection sends its input audio faster than anyone can speak.

A live speaker, a microphone or a call sends audio at real time; a client that sends it at ten
times real time (issue 10, flood B: four such sessions) is doing bulk work, and its decodes are
queued as such (:data:`~openrealtime.runtime.scheduler.bulk_work`): they never take the engine's
last free thread, so a live speaker's final transcript never waits for them. The measure is a leaky
bucket of audio seconds drained at real time: a client at real time keeps it near empty, one that
sends a whole clip at once fills it by the clip's length (the bound leaves room for a long
question), one that keeps sending ahead of real time fills it past the bound.

A bulk sender is also paced by its own transcription (:meth:`InputPace.room`): while
``BULK_PENDING_LIMIT`` of its decodes wait, its connection reads no more of its frames until one ends,
so its next frames wait in its socket and TCP slows it to what the server transcribes for it. Reading
on would only buy the server the VAD and resampling of audio whose decodes it must refuse
(``transcription_backlog_full``, the turn's audio dropped): on two cores, four senders at ten times real
time spent half a core of the event loop that way, beside a live speaker's answer (``bench abuse``,
flood B). A wait ends after ``BULK_WAIT_MAX_S`` whatever happens, and the refusal stays the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

BULK_LEAD_S = 6.0  # audio seconds ahead of real time past which input is bulk work
BULK_PENDING_LIMIT = 2  # decodes a bulk sender may have waiting before its connection stops reading
BULK_WAIT_MAX_S = 2.0  # the longest a bulk sender's next frame waits for one of its decodes to end


class InputPace:
    """Audio seconds received ahead of real time, drained one second per second."""

    def __init__(self, bound_s: float = BULK_LEAD_S) -> None:
        self.bound_s = bound_s
        self.lead_s = 0.0
        self._at: float | None = None
        self._decoded = asyncio.Event()  # set each time one of the connection's decodes ends
        self.waits = 0  # times the reader waited (for tests and logs)

    def received(self, audio_s: float, now: float) -> None:
        """``audio_s`` seconds of input arrived at ``now`` (a monotonic clock's seconds)."""
        if self._at is not None:
            self.lead_s = max(0.0, self.lead_s - (now - self._at))
        self._at = now
        self.lead_s += audio_s

    def bulk(self, now: float) -> bool:
        """Whether the input runs more than the bound ahead of real time at ``now``."""
        drained = 0.0 if self._at is None else now - self._at
        return self.lead_s - drained > self.bound_s

    def decoded(self) -> None:
        """One of the connection's decodes ended: a reader waiting in :meth:`room` reads on."""
        self._decoded.set()

    async def room(self, pending: int) -> None:
        """Before the connection reads its next frame: when the input is bulk and ``pending`` of its
        decodes wait already, wait for one to end (at most ``BULK_WAIT_MAX_S``)."""
        if pending < BULK_PENDING_LIMIT or not self.bulk(time.monotonic()):
            return
        self.waits += 1
        self._decoded.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BULK_WAIT_MAX_S):
                await self._decoded.wait()
