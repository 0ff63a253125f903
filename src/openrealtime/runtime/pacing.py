"""Speech synthesized a little ahead of its listener, not as fast as the cores allow.

A listener hears an answer at the pace of speech, but the TTS makes it several times faster than
that. Unpaced, one session's long answers took the shared voices and cores while another session
waited for its first words (issue 10 defect 3: one session's three out-of-band stories made another
session's answer 7.7 times slower than idle). So each clause of a speech is synthesized no earlier
than ``lead_s`` before a listener who started hearing the speech when its first clause was started
reaches it: the first ``lead_s`` of every answer go out as fast as ever, the rest at the pace of
speech, ``lead_s`` ahead, and a long answer uses the engines a little at a time instead of all at
once. What a listener hears is the same; a client that does not play the audio (one that saves it to a
file) gets long answers at about the pace of speech.

The pace is measured from when the speech's first clause was started (the listener's first audio
comes a little later), so the held clauses are, if anything, early. Where the server plays the audio
itself (a WebRTC call) its track says when the listener started hearing a speech (:meth:`SpeechPacer.heard`),
and the rest of it is paced from then; over a WebSocket, real-time playback from the first audio is what
the client does.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

STREAMS_KEPT = 16  # a connection's last speeches whose start is remembered (responses in flight: 3)


class SpeechPacer:
    """When each clause of a connection's speeches may be synthesized; ``lead_s`` 0 is never held."""

    def __init__(self, lead_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.lead_s = lead_s
        self._clock = clock
        self._started: OrderedDict[str, float] = OrderedDict()  # stream -> when its first clause began

    def heard(self, stream: str) -> None:
        """The listener started hearing ``stream`` now (a call's track knows; later than the first
        clause's start when other audio played before it): later clauses are paced from now."""
        if stream in self._started:
            self._started[stream] = max(self._started[stream], self._clock())

    def delay_s(self, stream: str, at_ms: float) -> float:
        """Seconds to wait before synthesizing the clause at ``at_ms`` of ``stream`` (0: now)."""
        if not stream or self.lead_s <= 0:
            return 0.0
        now = self._clock()
        started = self._started.get(stream)
        if started is None:  # its first clause (or one of a speech forgotten): due now
            self._started[stream] = started = now - at_ms / 1000
            while len(self._started) > STREAMS_KEPT:
                self._started.popitem(last=False)
        return max(0.0, started + at_ms / 1000 - self.lead_s - now)
