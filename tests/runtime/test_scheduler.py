"""The shared model worker: priority tiers, cancellation, failures and concurrency, with fake calls.

A gate job holds the worker's thread while the test queues work, so the order is decided by the
scheduler alone; nothing waits on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future

import numpy as np
import pytest

from openrealtime.contracts import TranscribeOptions
from openrealtime.exceptions import EngineError
from openrealtime.runtime.engines import transcribe_priority
from openrealtime.runtime.scheduler import (
    PRIORITY_FINAL,
    PRIORITY_FIRST_CAPTION,
    PRIORITY_PARTIAL,
    ModelWorker,
    bulk_work,
)
from openrealtime.session.commands import Transcribe
from tests.conftest import TIMEOUT_S


@pytest.fixture
def worker() -> Iterator[ModelWorker[str]]:
    w: ModelWorker[str] = ModelWorker("test")
    yield w
    w.close()


def hold(worker: ModelWorker[str]) -> tuple[threading.Event, Future[str]]:
    """Occupy the worker's thread until the returned event is set."""
    started, release = threading.Event(), threading.Event()

    def gate() -> str:
        started.set()
        release.wait(TIMEOUT_S)
        return "gate"

    future = worker.submit("gate", PRIORITY_FINAL, gate)
    assert started.wait(TIMEOUT_S)
    return release, future


def recorder(ran: list[str], name: str) -> Callable[[], str]:
    def call() -> str:
        ran.append(name)
        return name

    return call


def test_finals_then_first_captions_then_other_partials_each_first_come_first_served(
    worker: ModelWorker[str],
) -> None:
    release, _ = hold(worker)
    ran: list[str] = []
    queued = [
        ("partial-1", PRIORITY_PARTIAL),
        ("first-1", PRIORITY_FIRST_CAPTION),
        ("final-1", PRIORITY_FINAL),
        ("partial-2", PRIORITY_PARTIAL),
        ("first-2", PRIORITY_FIRST_CAPTION),
        ("final-2", PRIORITY_FINAL),
    ]
    futures = [worker.submit(name, priority, recorder(ran, name)) for name, priority in queued]
    assert worker.queued == len(queued)
    release.set()
    assert [f.result(TIMEOUT_S) for f in futures] == [name for name, _ in queued]
    assert ran == ["final-1", "final-2", "first-1", "first-2", "partial-1", "partial-2"]
    assert worker.queued == 0


def test_a_job_cancelled_while_queued_never_runs(worker: ModelWorker[str]) -> None:
    release, _ = hold(worker)
    ran: list[str] = []
    dropped = worker.submit("dropped", PRIORITY_PARTIAL, recorder(ran, "dropped"))
    kept = worker.submit("kept", PRIORITY_PARTIAL, recorder(ran, "kept"))
    worker.cancel("dropped")
    assert dropped.cancelled()
    assert worker.queued == 1
    release.set()
    assert kept.result(TIMEOUT_S) == "kept"
    assert ran == ["kept"]
    with pytest.raises(CancelledError):
        dropped.result(TIMEOUT_S)


def test_cancelling_a_running_finished_or_unknown_job_changes_nothing(worker: ModelWorker[str]) -> None:
    release, running = hold(worker)
    worker.cancel("gate")  # running: it finishes, and the session drops its result by id
    worker.cancel("never-submitted")
    release.set()
    assert running.result(TIMEOUT_S) == "gate"
    worker.cancel("gate")  # finished
    assert worker.queued == 0
    assert worker.submit("next", PRIORITY_FINAL, lambda: "next").result(TIMEOUT_S) == "next"


def test_an_engine_error_or_a_crash_fails_only_its_own_job(worker: ModelWorker[str]) -> None:
    def refuse() -> str:
        raise EngineError("no", code="transcription_failed")

    def crash() -> str:
        raise RuntimeError("bug in an engine")

    with pytest.raises(EngineError) as refused:
        worker.submit("refuse", PRIORITY_FINAL, refuse).result(TIMEOUT_S)
    assert refused.value.code == "transcription_failed"
    with pytest.raises(EngineError) as crashed:
        worker.submit("crash", PRIORITY_FINAL, crash).result(TIMEOUT_S)
    assert crashed.value.code == "engine_error"
    assert worker.submit("after", PRIORITY_PARTIAL, lambda: "after").result(TIMEOUT_S) == "after"


def test_threads_run_jobs_at_once() -> None:
    worker: ModelWorker[str] = ModelWorker("pair", threads=2)
    both = threading.Barrier(2, timeout=TIMEOUT_S)  # only passable by two jobs running together

    def meet() -> str:
        both.wait()
        return "met"

    try:
        futures = [worker.submit(f"job-{i}", PRIORITY_PARTIAL, meet) for i in range(2)]
        assert [f.result(TIMEOUT_S) for f in futures] == ["met", "met"]
    finally:
        worker.close()


@pytest.mark.parametrize(
    ("final", "first_caption", "priority"),
    [(True, False, PRIORITY_FINAL), (False, True, PRIORITY_FIRST_CAPTION), (False, False, PRIORITY_PARTIAL)],
)
def test_transcribe_commands_map_to_their_tier(final: bool, first_caption: bool, priority: int) -> None:
    command = Transcribe(
        job_id="job_1",
        item_id="item_1",
        audio=np.zeros(16, dtype=np.float32),
        options=TranscribeOptions(),
        final=final,
        first_caption=first_caption,
    )
    assert transcribe_priority(command) == priority


def test_sessions_take_turns_within_a_tier_so_a_flood_does_not_starve_a_newcomer(worker: ModelWorker[str]) -> None:
    """Issue 10 defect 3: forty queued jobs of one session; another's job, queued last, runs second."""
    release, gate = hold(worker)
    ran: list[str] = []
    flood = [worker.submit(f"f{i}", PRIORITY_PARTIAL, recorder(ran, f"f{i}"), key="flood") for i in range(40)]
    victim = worker.submit("v", PRIORITY_PARTIAL, recorder(ran, "v"), key="victim")
    release.set()
    assert victim.result(TIMEOUT_S) == "v"
    assert ran.index("v") <= 1  # behind at most the flood's job of the same round
    for future in flood:
        future.result(TIMEOUT_S)
    assert [name for name in ran if name != "v"] == [f"f{i}" for i in range(40)]  # each session's own order
    assert gate.result(TIMEOUT_S) == "gate"


def test_the_fair_executor_serves_the_session_of_the_caller() -> None:
    from openrealtime.runtime.scheduler import FairExecutor, current_session

    pool = FairExecutor("test", threads=1)
    try:
        started, release = threading.Event(), threading.Event()
        pool.submit(lambda: started.set() or release.wait(TIMEOUT_S))
        assert started.wait(TIMEOUT_S)
        ran: list[str] = []
        token = current_session.set("flood")
        flood = [pool.submit(ran.append, f"f{i}") for i in range(10)]
        current_session.reset(token)
        token = current_session.set("victim")
        victim = pool.submit(ran.append, "v")
        current_session.reset(token)
        release.set()
        victim.result(TIMEOUT_S)
        for future in flood:
            future.result(TIMEOUT_S)
        assert ran.index("v") <= 1
    finally:
        pool.shutdown()


def test_stats_show_the_queue_and_the_busiest_sessions_share(worker: ModelWorker[str]) -> None:
    """For /metrics: one session running three jobs for every one of another's has 3/4 of the time."""
    release, gate = hold(worker)
    waiting = [worker.submit(f"j{i}", PRIORITY_FINAL, lambda: "x", key="hog" if i % 4 else "fair") for i in range(8)]
    assert worker.stats().queued == 8
    release.set()
    for future in [gate, *waiting]:
        future.result(TIMEOUT_S)
    with worker._cv:  # the job times, made exact: the gate 1 s, each job 0.5 s
        worker._recent.clear()
        worker._busy_s = 0.0
        for i in range(8):
            worker._ran("hog" if i % 4 else "fair", 0.5, now=100.0)
        worker._ran("", 1.0, now=100.0)
    stats = worker.stats(now=100.0)
    assert (stats.queued, stats.busy_s) == (0, 5.0)
    assert stats.top_session_share == pytest.approx(3 / 5)  # hog 3.0 s of 5.0
    assert worker.stats(now=100.0 + 61).top_session_share == 0.0  # a minute later: nothing recent


def test_within_a_tier_the_session_that_used_the_worker_least_goes_first(worker: ModelWorker[str]) -> None:
    """Four sessions' finals keep the worker busy; a fifth session's one final, queued last, runs
    next, since it used the worker least of late (it waited a round of their finals before)."""
    ran: list[str] = []
    release, gate = hold(worker)
    with worker._cv:  # the floods' recent use of the worker: seconds of decoding each, at one instant
        now = time.monotonic()  # (at successive instants the first would have decayed most: a tie broken by load)
        for flooder in ("f1", "f2", "f3", "f4"):
            worker._ran(flooder, 2.0, now)
    futures = [
        worker.submit(f"{f}-{i}", PRIORITY_FINAL, recorder(ran, f), key=f)
        for i in range(2)
        for f in ("f1", "f2", "f3", "f4")
    ]
    futures.append(worker.submit("victim", PRIORITY_FINAL, recorder(ran, "victim"), key="victim"))
    partial = worker.submit("caption", PRIORITY_PARTIAL, recorder(ran, "caption"), key="victim")
    release.set()
    for future in [gate, *futures, partial]:
        future.result(TIMEOUT_S)
    assert ran[0] == "victim"
    assert ran[-1] == "caption"  # tiers still come first: a partial waits for every final
    assert sorted(ran[1:5]) == ["f1", "f2", "f3", "f4"]  # the floods in turn


def test_bulk_work_never_takes_the_last_free_thread_and_comes_after_the_rest() -> None:
    """Decodes of audio sent faster than real time are bulk work: of two threads, they hold at most
    one, so a live speaker's final starts at once, without waiting for a flooder's decode to end
    (issue 10, flood B: 2.1-2.4x its idle latency while both threads ran the floods' finals)."""
    worker: ModelWorker[str] = ModelWorker("pair", threads=2)
    ran: list[str] = []
    started, release = threading.Event(), threading.Event()

    def flood() -> str:
        started.set()
        release.wait(TIMEOUT_S)
        return "flood"

    token = bulk_work.set(True)
    try:
        first = worker.submit("flood-0", PRIORITY_FINAL, flood, key="flooder")
        assert started.wait(TIMEOUT_S)
        queued_bulk = worker.submit("flood-1", PRIORITY_FINAL, recorder(ran, "flood-1"), key="flooder")
    finally:
        bulk_work.reset(token)
    try:
        victim = worker.submit("victim", PRIORITY_PARTIAL, recorder(ran, "victim"), key="victim")
        assert victim.result(TIMEOUT_S) == "victim"  # the second thread, while the flood holds the first
        assert ran == ["victim"]  # the second bulk job waited although a thread was free
        assert not queued_bulk.done()
        release.set()
        assert queued_bulk.result(TIMEOUT_S) == "flood-1"
        assert first.result(TIMEOUT_S) == "flood"
    finally:
        release.set()
        worker.close()


def test_a_bulk_job_cancelled_before_it_runs_frees_its_lane() -> None:
    worker: ModelWorker[str] = ModelWorker("pair", threads=2)
    try:
        token = bulk_work.set(True)
        try:
            release, gate = hold(worker)  # a bulk job holds one thread
            cancelled = worker.submit("bulk-1", PRIORITY_FINAL, lambda: "never")
            worker.cancel("bulk-1")
            later = worker.submit("bulk-2", PRIORITY_FINAL, lambda: "later")
        finally:
            bulk_work.reset(token)
        assert cancelled.cancelled()
        release.set()
        assert gate.result(TIMEOUT_S) == "gate"
        assert later.result(TIMEOUT_S) == "later"
        assert worker._bulk_running == 0
    finally:
        worker.close()
