"""Long turns are decoded in windows, each its own job, so other sessions' decodes run between them
(issue 10 defect 5). A recording transcriber gives the order of the calls; nothing waits on time."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript, TranscriptSegment
from openrealtime.engines.fake import EnergyVad
from openrealtime.runtime.engines import LONG_AUDIO_S, WINDOW_S, EngineSet, audio_windows, stitch
from openrealtime.runtime.scheduler import current_session
from openrealtime.session.commands import Transcribe, TranscriptReady
from tests.conftest import TIMEOUT_S

RATE = 16_000
LOUD_A, LOUD_B = 0.1, 0.5  # session A's audio and B's are told apart by their level


class RecordingTranscriber:
    """Records each call (whose, seconds, prompt); ``gate``, when given, holds the first call."""

    sample_rate_hz = RATE
    multilingual = False

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, float, str | None]] = []
        self.entered = threading.Event()
        self._gate = gate

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        whose = "B" if float(np.abs(audio).max()) > (LOUD_A + LOUD_B) / 2 else "A"
        self.calls.append((whose, len(audio) / RATE, options.prompt))
        self.entered.set()
        if self._gate is not None and len(self.calls) == 1:
            assert self._gate.wait(TIMEOUT_S)
        n = len(self.calls)
        return Transcript(f" {whose}{n}", (TranscriptSegment(f" {whose}{n}", 0.5, 1.5),))


def speech(seconds: float, level: float) -> Samples:
    return np.full(round(seconds * RATE), level, dtype=np.float32)


def final(job_id: str, audio: Samples) -> Transcribe:
    return Transcribe(job_id, f"item_{job_id}", audio, TranscribeOptions(), final=True)


async def collect(results: AsyncIterator[object] | None) -> list[object]:
    assert results is not None
    return [r async for r in results]


def start(engines: EngineSet, session: str, command: Transcribe) -> asyncio.Task[list[object]]:
    """The command's job as the runtime runs it: a task of session ``session``."""
    context = contextvars.copy_context()
    context.run(current_session.set, session)
    return asyncio.create_task(collect(engines.run_job(command)), context=context)


def engines_over(transcriber: RecordingTranscriber) -> EngineSet:
    return EngineSet(vad=EnergyVad(), transcriber=transcriber, transcriber_name="recording")


async def test_a_short_final_waits_for_at_most_one_window_of_a_long_one() -> None:
    transcriber = RecordingTranscriber()
    engines = engines_over(transcriber)
    try:
        long_a = start(engines, "A", final("a", speech(300, LOUD_A)))
        short_b = start(engines, "B", final("b", speech(2, LOUD_B)))  # queued after A's first window
        async with asyncio.timeout(TIMEOUT_S):
            (a,), (b,) = await asyncio.gather(long_a, short_b)
    finally:
        engines.close()
    whose = [c[0] for c in transcriber.calls]
    before_b = transcriber.calls[: whose.index("B")]
    assert [c[0] for c in before_b] == ["A"]
    assert before_b[0][1] <= LONG_AUDIO_S
    windows = [c for c in transcriber.calls if c[0] == "A"]
    assert len(windows) == len(audio_windows(speech(300, LOUD_A), RATE)) > 1
    assert sum(c[1] for c in windows) == pytest.approx(300)
    assert isinstance(a, TranscriptReady)
    assert isinstance(b, TranscriptReady)
    assert a.job_id == "a"
    assert a.transcript.text == " ".join(f"A{i + 1}" for i, c in enumerate(transcriber.calls) if c[0] == "A")
    assert b.transcript.text == " B2"  # one window: the transcript as the engine gave it


async def test_each_window_is_prompted_with_the_text_before_it() -> None:
    transcriber = RecordingTranscriber()
    engines = engines_over(transcriber)
    try:
        command = Transcribe("a", "item_a", speech(100, LOUD_A), TranscribeOptions(prompt="Kubernetes"), final=True)
        async with asyncio.timeout(TIMEOUT_S):
            (result,) = await collect(engines.run_job(command))
    finally:
        engines.close()
    prompts = [c[2] for c in transcriber.calls]
    assert prompts == ["Kubernetes"] + [f"Kubernetes A{i}" for i in range(1, len(prompts))]
    assert isinstance(result, TranscriptReady)
    starts = [s.start_s for s in result.transcript.segments]
    offsets = [start / RATE for start, _ in audio_windows(speech(100, LOUD_A), RATE)]
    assert starts == [offset + 0.5 for offset in offsets]


async def test_a_cancelled_long_decode_runs_no_more_windows() -> None:
    gate = threading.Event()
    transcriber = RecordingTranscriber(gate)
    engines = engines_over(transcriber)
    try:
        long_a = start(engines, "A", final("a", speech(300, LOUD_A)))
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.to_thread(transcriber.entered.wait)
            engines.cancel_job("a")  # as the connection does on CancelJob: the engine, then the task
            long_a.cancel()
            await asyncio.gather(long_a, return_exceptions=True)
            gate.set()
            (probe,) = await collect(engines.run_job(final("b", speech(2, LOUD_B))))  # runs after A's window
    finally:
        engines.close()
    assert isinstance(probe, TranscriptReady)
    assert [c[0] for c in transcriber.calls] == ["A", "B"]
    assert engines.asr_worker.queued == 0


def test_a_window_ends_at_the_quietest_100_ms_near_its_boundary() -> None:
    audio = speech(70, LOUD_A)
    pause = round((WINDOW_S - 1.3) * RATE)
    audio[pause : pause + RATE // 10] = 0.0  # a 100 ms pause 1.3 s before the first boundary
    windows = audio_windows(audio, RATE)
    assert windows[0][0] == 0
    assert windows[-1][1] == len(audio)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(windows))
    assert pause <= windows[0][1] <= pause + RATE // 10
    assert all(end - start <= LONG_AUDIO_S * RATE for start, end in windows)


def test_audio_up_to_the_limit_is_one_window_and_stitching_one_changes_nothing() -> None:
    assert audio_windows(speech(LONG_AUDIO_S, LOUD_A), RATE) == [(0, round(LONG_AUDIO_S * RATE))]
    only = Transcript(" Hello.", (TranscriptSegment(" Hello.", 0.0, 1.0),), "en")
    assert stitch([(0.0, only)]) is only


async def test_a_long_turns_next_final_decodes_only_its_last_window() -> None:
    """The final is always of the whole turn (issue 14); a long turn's earlier windows are the same
    audio with the same options each time, so they are decoded once."""
    transcriber = RecordingTranscriber()
    engines = engines_over(transcriber)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            [first] = await start(engines, "A", final("a1", speech(60, LOUD_A)))
            assert len(transcriber.calls) == len(audio_windows(speech(60, LOUD_A), RATE)) == 3
            [again] = await start(engines, "A", final("a2", speech(70, LOUD_A)))  # the turn went on
    finally:
        engines.close()
    assert len(transcriber.calls) == 4  # only the last window, now longer, was decoded again
    assert isinstance(first, TranscriptReady)
    assert isinstance(again, TranscriptReady)
    assert again.transcript.text.split()[:2] == first.transcript.text.split()[:2]
    assert engines.decoded_windows.hits == 2
