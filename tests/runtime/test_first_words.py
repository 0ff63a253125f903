"""First words first, across engines (runtime/scheduler.py ``FirstWords``): a final transcript or an
answer's first clause marks itself urgent, and later work (an answer's later clauses and tokens, far
ahead of their listener) holds back for it, a bounded time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from openrealtime.contracts import ChatChunk, ChatRequest, TextDelta, TranscribeOptions, Transcript
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.scheduler import FirstWords, current_session
from openrealtime.session.commands import Generate, Synthesize, Transcribe
from tests.conftest import TIMEOUT_S


def test_later_work_waits_while_urgent_work_runs_and_never_longer_than_its_bound() -> None:
    first_words = FirstWords()
    assert not first_words.waiting()
    started = time.monotonic()
    first_words.hold_back(5.0)  # nothing urgent: no wait
    assert time.monotonic() - started < 0.1
    done = threading.Event()

    def urgent_for(seconds: float) -> None:
        with first_words.urgent():
            done.wait(seconds)

    worker = threading.Thread(target=urgent_for, args=(TIMEOUT_S,))
    worker.start()
    while not first_words.waiting():
        time.sleep(0.001)
    started = time.monotonic()
    first_words.hold_back(0.2)  # urgent work goes on: waits for the bound only
    assert 0.15 < time.monotonic() - started < 2
    releaser = threading.Timer(0.1, done.set)
    releaser.start()
    started = time.monotonic()
    first_words.hold_back(TIMEOUT_S)  # ... and no longer than the urgent work
    assert time.monotonic() - started < 2
    worker.join()
    assert not first_words.waiting()


class Watching(FakeTranscriber):
    """Records whether the engines' urgent flag was up while it decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.engines: EngineSet | None = None
        self.urgent_during: list[bool] = []

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcript:
        assert self.engines is not None
        self.urgent_during.append(self.engines.first_words.waiting())
        return super().transcribe(audio, options)


async def test_final_decodes_and_first_clauses_are_urgent_and_later_clauses_hold_back() -> None:
    transcriber = Watching()
    engines = EngineSet(vad=EnergyVad(), transcriber=transcriber, transcriber_name="x")
    transcriber.engines = engines
    seen: list[bool] = []

    class Voice(ToneSynthesizer):
        def synthesize(
            self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0
        ) -> Iterator[np.ndarray]:
            seen.append(engines.first_words.waiting())
            yield from super().synthesize(text, voice=voice, stop=stop, speed=speed)

    engines.synthesizers = {"*": Voice()}
    try:
        audio = np.zeros(16_000, dtype=np.float32)
        for final in (True, False):
            command = Transcribe(job_id=f"t{final}", item_id="i", audio=audio, options=TranscribeOptions(), final=final)
            results = engines.run_job(command)
            assert results is not None
            [_ async for _ in results]
        assert transcriber.urgent_during == [True, False]  # the final is urgent, a partial is not
        for at_ms in (0, 4_000):
            results = engines.run_job(Synthesize(job_id=f"s{at_ms}", text="Hi.", stream="resp_1", at_ms=at_ms))
            assert results is not None
            [_ async for _ in results]
        assert seen == [True, False]  # the first clause is urgent, a later one is not
        with engines.first_words.urgent():  # someone's first words are being made: a later clause waits
            started = time.monotonic()
            results = engines.run_job(Synthesize(job_id="s2", text="Hi.", stream="resp_1", at_ms=9_000))
            assert results is not None
            [_ async for _ in results]
            assert time.monotonic() - started >= 0.25  # HOLD_BACK_S (0.3 s), then it goes anyway
    finally:
        engines.close()


def test_a_session_is_busy_only_with_its_own_urgent_work() -> None:
    words = FirstWords()
    assert not words.busy("conn_1")
    with words.urgent("conn_1"):
        with words.urgent("conn_1"), words.urgent():
            assert words.busy("conn_1")
            assert not words.busy("conn_2")
            assert words.waiting()
        assert words.busy("conn_1")
    assert not words.busy("conn_1")
    assert not words.waiting()


async def test_an_answer_is_held_while_its_own_first_clause_is_voiced() -> None:
    """The runtime hands the LLM a ``hold_while`` that is true exactly while this connection's first
    clause is being synthesized (not another connection's, not a later clause)."""
    engines = EngineSet(vad=EnergyVad(), transcriber=Watching(), transcriber_name="x")
    requests: list[ChatRequest] = []

    class Chat:
        def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
            requests.append(request)
            yield TextDelta("Hi.")

    held: list[bool] = []

    class Voice(ToneSynthesizer):
        def synthesize(
            self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0
        ) -> Iterator[np.ndarray]:
            assert requests[0].hold_while is not None
            held.append(requests[0].hold_while())
            yield from super().synthesize(text, voice=voice, stop=stop, speed=speed)

    engines.chat = Chat()  # type: ignore[assignment]
    engines.synthesizers = {"*": Voice()}
    try:
        token = current_session.set("conn_1")
        results = engines.run_job(Generate(job_id="g", request=ChatRequest(messages=[])))
        assert results is not None
        [_ async for _ in results]
        for at_ms in (0, 4_000):
            results = engines.run_job(Synthesize(job_id=f"s{at_ms}", text="Hi.", stream="resp_1", at_ms=at_ms))
            assert results is not None
            [_ async for _ in results]
        current_session.reset(token)
        current_session.set("conn_2")
        results = engines.run_job(Synthesize(job_id="s_other", text="Hi.", stream="resp_2", at_ms=0))
        assert results is not None
        [_ async for _ in results]
        assert held == [True, False, False]  # its own first clause only
        assert requests[0].hold_while is not None
        assert not requests[0].hold_while()
    finally:
        engines.close()
