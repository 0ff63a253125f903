"""Speech synthesized a little ahead of its listener (runtime/pacing.py), and the runtime holding
a clause's synthesis until then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.pacing import STREAMS_KEPT, SpeechPacer
from openrealtime.session.commands import CancelJob, Synthesize
from tests.conftest import TIMEOUT_S
from tests.runtime.test_connection import MemoryTransport, ScriptedSession


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_seconds_go_at_once_and_the_rest_a_lead_ahead_of_the_listener() -> None:
    clock = Clock()
    pacer = SpeechPacer(5.0, clock=clock)
    assert pacer.delay_s("resp_1", 0) == 0  # the first clause: the listener is waiting
    clock.now += 0.5
    assert pacer.delay_s("resp_1", 3_000) == 0  # within the lead
    assert pacer.delay_s("resp_1", 12_000) == 6.5  # heard 12 s after the start: made 5 s before
    clock.now += 20
    assert pacer.delay_s("resp_1", 12_000) == 0  # a listener would be past it: no wait
    assert pacer.delay_s("resp_2", 0) == 0  # each speech has its own start


def test_speech_with_no_stream_or_no_lead_is_never_held() -> None:
    clock = Clock()
    assert SpeechPacer(5.0, clock=clock).delay_s("", 60_000) == 0  # translation speech: paced by its source
    unpaced = SpeechPacer(0, clock=clock)
    unpaced.delay_s("resp_1", 0)
    assert unpaced.delay_s("resp_1", 60_000) == 0


def test_a_speech_first_seen_mid_way_is_due_at_once_and_old_speeches_are_forgotten() -> None:
    clock = Clock()
    pacer = SpeechPacer(2.0, clock=clock)
    assert pacer.delay_s("resp_late", 30_000) == 0  # not seen from its start: assume it is due now
    assert pacer.delay_s("resp_late", 40_000) == 8.0  # then paced from there
    for n in range(STREAMS_KEPT):
        pacer.delay_s(f"resp_{n}", 0)
    assert "resp_late" not in pacer._started  # bounded: a connection's old speeches are dropped
    assert len(pacer._started) == STREAMS_KEPT


async def test_the_runtime_holds_a_later_clause_until_its_lead_and_drops_it_if_cancelled_meanwhile() -> None:
    """Two clauses of one answer: the first (at 0 ms) is synthesized at once, the one 400 ms into the
    answer only once a listener who started at the first would be 100 ms before it (lead 0.3 s)."""
    started: dict[str, float] = {}
    two_started = asyncio.Event()

    async def run(job_id: str) -> AsyncIterator[object]:
        started[job_id] = time.monotonic()
        if len(started) == 2:
            two_started.set()
        return
        yield  # an async generator with no results

    clauses = [
        Synthesize(job_id="job_1", text="One.", stream="resp_1", at_ms=0),
        Synthesize(job_id="job_2", text="Two.", stream="resp_1", at_ms=400),
        Synthesize(job_id="job_3", text="Three.", stream="resp_1", at_ms=60_000),  # a minute away
    ]
    script = {"go": clauses, "barge-in": [CancelJob("job_3")]}
    session = ScriptedSession(lambda value: ([], script.get(str(value), [])))
    transport = MemoryTransport()
    connection = Connection(
        session,
        transport,
        SessionKind.REALTIME,
        run_job=lambda command: run(command.job_id),  # type: ignore[attr-defined]
        cancel_job=lambda _: None,
        speech_lead_s=0.3,
    )
    said = iter(["go", "barge-in"])
    session.receive = lambda event: session._take(next(said))  # type: ignore[method-assign]
    task = asyncio.create_task(connection.run())
    begun = time.monotonic()
    transport.incoming.put_nowait('{"type": "input_audio_buffer.clear"}')
    async with asyncio.timeout(TIMEOUT_S):
        await two_started.wait()
    assert started["job_1"] - begun < 0.08
    assert started["job_2"] - begun >= 0.09  # held ~0.1 s (400 ms - 300 ms lead)
    assert "job_3" in connection._jobs  # held, not started
    transport.incoming.put_nowait('{"type": "input_audio_buffer.clear"}')  # the answer is cancelled
    held = connection._jobs["job_3"]
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(held, return_exceptions=True)
    assert held.cancelled()
    assert "job_3" not in started  # dropped while it waited
    transport.incoming.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await task
