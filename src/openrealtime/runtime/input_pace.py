"""Whether a connection sends its input audio faster than anyone can speak.

A live speaker, a microphone or a call sends audio at real time; a client that sends it at ten
times real time (issue 10, flood B: four such sessions) is doing bulk work, and its decodes are
queued as such (:data:`~openrealtime.runtime.scheduler.bulk_work`): they never take the engine's
last free thread, so a live speaker's final transcript never waits for them. The measure is a leaky
bucket of audio seconds drained at real time: a client at real time keeps it near empty, one that
sends a whole clip at once fills it by the clip's length (the bound leaves room for a long
question), one that keeps sending ahead of real time fills it past the bound.
"""

from __future__ import annotations

BULK_LEAD_S = 6.0  # audio seconds ahead of real time past which input is bulk work


class InputPace:
    """Audio seconds received ahead of real time, drained one second per second."""

    def __init__(self, bound_s: float = BULK_LEAD_S) -> None:
        self.bound_s = bound_s
        self.lead_s = 0.0
        self._at: float | None = None

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
