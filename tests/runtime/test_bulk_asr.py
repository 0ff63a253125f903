"""Bulk decodes (audio sent faster than real time) run on a replica of their own at the lowest OS
priority, loaded on the first one; live decodes never touch it (issue 10, flood B)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator

import numpy as np

from openrealtime.contracts import TranscribeOptions, Transcript
from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.runtime.bulk_asr import BULK_NICE, BulkAsr
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.scheduler import bulk_work
from openrealtime.session.commands import Transcribe, TranscriptReady


class Replica(FakeTranscriber):
    """Records the niceness of the thread each decode ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.niceness: list[int] = []

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().transcribe(audio, options)


def decode(job_id: str) -> Transcribe:
    audio = np.full(16_000, 0.3, dtype=np.float32)
    return Transcribe(job_id, f"item_{job_id}", audio, TranscribeOptions(), final=True)


async def run(engines: EngineSet, command: Transcribe, *, bulk: bool) -> list[object]:
    """The job's results, run in a task of its own as the runtime runs jobs (its context marked bulk
    work or not, as a connection marks it)."""

    async def results() -> list[object]:
        bulk_work.set(bulk)
        stream = engines.run_job(command)
        assert isinstance(stream, AsyncIterator)
        return [r async for r in stream]

    return await asyncio.create_task(results())


async def test_bulk_decodes_run_on_the_replica_at_the_lowest_priority_and_live_ones_never_load_it() -> None:
    live, replica = FakeTranscriber(), Replica()
    loads: list[int] = []

    def load() -> Replica:
        loads.append(threading.get_native_id())
        return replica

    engines = EngineSet(vad=EnergyVad(), transcriber=live, transcriber_name="fake", bulk_asr=BulkAsr(load))
    try:
        [ready] = await run(engines, decode("live"), bulk=False)
        assert isinstance(ready, TranscriptReady)
        assert (live.calls, loads) == (1, [])  # live work: the recogniser, the replica never loaded
        for k in range(3):
            [ready] = await run(engines, decode(f"bulk{k}"), bulk=True)
            assert isinstance(ready, TranscriptReady)
            assert ready.transcript.text
        assert live.calls == 1
        assert len(loads) == 1  # loaded once, on the first bulk decode
        assert replica.niceness == [BULK_NICE] * 3  # in the bulk worker's thread, at the lowest priority
    finally:
        engines.close()
