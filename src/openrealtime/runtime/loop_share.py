"""The event loop's time, shared among the sessions that have a backlog of inputs.

A session loop with inputs waiting never suspends on its queue, so it hands the event loop back
after a slice of work (issue 10: a burst of 2,000 items held every other session and ``/healthz``
until it was all handled). With one fixed slice each, N sessions bursting at once made every turn
of the event loop N slices long, and a request to ``/healthz``, which needs a few turns, waited for
all of them (55-65 ms p99 under bursts against a 50 ms goal). The slice is therefore one
``ROUND_S`` shared by the sessions that are behind: alone, a session gets all of it; with four
behind, each gets a quarter, so a turn of the loop stays about ``ROUND_S`` whatever their number.

A request to ``/healthz`` takes about six turns of the loop through uvicorn, so the round is short:
under bursts of 2,000 items against ``serve`` (load ~5, two runs each), its p99 was 61 ms with a
5 ms round and 33-34 ms with 2 ms, and the bursts themselves finished sooner (0.35 against 0.47 s:
the writer sends between the steps of the burst instead of after long runs of them).
"""

from __future__ import annotations

ROUND_S = 0.002  # one turn of the event loop's worth of session work, shared by the busy sessions
MIN_SLICE_S = 0.0005  # never less: each yield costs a turn of the loop, about 50 us


class LoopShare:
    """How many session loops are behind, and so how long each may work before yielding."""

    def __init__(self, round_s: float = ROUND_S) -> None:
        self.round_s = round_s
        self.behind = 0

    def slice_s(self) -> float:
        """How long a session loop may work at a stretch now."""
        return max(MIN_SLICE_S, self.round_s / max(1, self.behind))


SHARE = LoopShare()
"""The process's one event loop's share (sessions of one process all run on it)."""
