"""The engine set runs end-of-turn questions on its own threads, or fails them without a model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeTranscriber, FixedEndOfTurn
from openrealtime.exceptions import EngineError
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.metrics import Metrics
from openrealtime.session.commands import (
    END_OF_TURN_TEXT_UNAVAILABLE,
    END_OF_TURN_UNAVAILABLE,
    PredictTurnEnd,
    ScoreTurnWords,
    TurnEndPredicted,
)


def fake_set(**engines: Any) -> EngineSet:
    """The fake VAD and transcriber, with ``engines`` (the end-of-turn models, the LLM) beside them."""
    return EngineSet(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake", **engines)


async def answers(engines: EngineSet, command: PredictTurnEnd) -> list[object]:
    results = engines.run_job(command)
    assert results is not None
    return [result async for result in results]


async def test_a_question_is_answered_with_the_models_probability() -> None:
    model = FixedEndOfTurn(0.75)
    engines = fake_set(end_of_turn=model)
    try:
        audio = np.zeros(16_000, np.float32)
        assert await answers(engines, PredictTurnEnd("job_1", "item_1", audio)) == [TurnEndPredicted("job_1", 0.75)]
        assert model.heard_samples == [16_000]
    finally:
        engines.close()


async def test_without_a_model_the_question_fails_as_unavailable() -> None:
    engines = fake_set()
    try:
        with pytest.raises(EngineError) as failure:
            await answers(engines, PredictTurnEnd("job_1", "item_1", np.zeros(10, np.float32)))
        assert failure.value.code == END_OF_TURN_UNAVAILABLE
    finally:
        engines.close()


async def test_each_decision_reports_its_time_and_its_cpu_time_to_metrics() -> None:
    """Issue 13 asks for the model's cost per decision: ``/metrics`` has its CPU time apart."""
    metrics = Metrics()

    class Busy(FixedEndOfTurn):
        def completion_probability(self, audio):  # type: ignore[no-untyped-def]
            deadline = time.thread_time() + 0.02
            while time.thread_time() < deadline:  # 20 ms of CPU, like a small model
                pass
            return super().completion_probability(audio)

    engines = fake_set(
        end_of_turn=Busy(0.5),
        on_stage=metrics.observe_stage,
    )
    try:
        for k in range(3):
            await answers(engines, PredictTurnEnd(f"job_{k}", "item_1", np.zeros(1600, np.float32)))
    finally:
        engines.close()
    text = metrics.render()
    assert 'openrealtime_stage_latency_seconds_count{stage="end_of_turn"} 3' in text
    assert "openrealtime_end_of_turn_cpu_seconds_count 3" in text
    cpu_sum = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("openrealtime_end_of_turn_cpu_seconds_sum")
    )
    assert 0.06 <= cpu_sum < 0.5


class FixedWords:
    """An :class:`~openrealtime.contracts.EndOfTurnTextModel` that always answers ``probability``."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[str] = []
        self.warmed: list[str] = []

    def end_probability(self, words: str) -> float:
        self.asked.append(words)
        return self.probability

    def warm(self, words: str) -> None:
        self.warmed.append(words)


async def test_a_words_question_is_answered_by_the_llms_text_signal_and_its_cpu_reported() -> None:
    metrics = Metrics()
    model = FixedWords(1e-3)
    engines = fake_set(
        end_of_turn_text=model,
        on_stage=metrics.observe_stage,
    )
    try:
        results = engines.run_job(ScoreTurnWords("job_1", "item_1", "What is the capital of France?"))
        assert results is not None
        assert [result async for result in results] == [TurnEndPredicted("job_1", 1e-3)]
    finally:
        engines.close()
    assert model.asked == ["What is the capital of France?"]
    text = metrics.render()
    assert 'openrealtime_stage_latency_seconds_count{stage="end_of_turn_text"} 1' in text
    assert "openrealtime_end_of_turn_text_cpu_seconds_count 1" in text


async def test_without_the_text_signal_a_words_question_fails_as_unavailable() -> None:
    engines = fake_set()
    try:
        results = engines.run_job(ScoreTurnWords("job_1", "item_1", "hello"))
        assert results is not None
        with pytest.raises(EngineError) as failure:
            [result async for result in results]
        assert failure.value.code == END_OF_TURN_TEXT_UNAVAILABLE
    finally:
        engines.close()


async def test_warmings_reach_the_llms_and_give_no_result() -> None:
    from openrealtime.contracts import ChatRequest
    from openrealtime.session.commands import WarmAnswer, WarmTurnWords

    class WarmedChat:
        def __init__(self) -> None:
            self.warmed: list[ChatRequest] = []

        def warm(self, request: ChatRequest) -> None:
            self.warmed.append(request)

    chat, words = WarmedChat(), FixedWords(1e-3)
    engines = fake_set(
        end_of_turn_text=words,
        chat=chat,  # type: ignore[arg-type]
    )
    request = ChatRequest(messages=[{"role": "user", "content": "what is the"}], cache_key="sess_1")
    try:
        for command in (WarmAnswer("job_1", request), WarmTurnWords("job_2", "what is the")):
            results = engines.run_job(command)
            assert results is not None
            assert [result async for result in results] == []
    finally:
        engines.close()
    assert chat.warmed == [request]
    assert words.warmed == ["what is the"]
    assert words.asked == []


class Writer:
    """A chat LLM writing an answer's first clause for ``busy_s``, from ``appears_s`` after it is first
    asked."""

    def __init__(self, *, appears_s: float = 0.0, busy_s: float = 0.0) -> None:
        self._appears_s, self._busy_s = appears_s, busy_s
        self._start: float | None = None

    def writing_first_words(self) -> bool:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        return self._start + self._appears_s <= now < self._start + self._appears_s + self._busy_s


LIMIT_S = 0.1


def waited(writer: Writer, limit_s: float = LIMIT_S) -> float:
    from openrealtime.runtime.engines import let_first_words_go

    started = time.monotonic()
    let_first_words_go(writer, limit_s)
    return time.monotonic() - started


def test_the_text_signal_waits_while_an_answer_writes_its_first_clause_and_no_longer() -> None:
    """The question about the pause's words lets the answer begun on them have the cores until its
    first clause is written (at most the session's hold), and costs next to nothing without one."""
    from openrealtime.runtime.engines import ANSWER_APPEARS_S

    # Lower bounds are exact (a wait is never shorter); upper ones leave a loaded machine its delays.
    assert ANSWER_APPEARS_S <= waited(Writer()) < LIMIT_S / 2, "no answer: asked almost at once"
    assert 0.03 <= waited(Writer(busy_s=0.03)) < LIMIT_S, "until the first clause is written"
    assert 0.03 <= waited(Writer(appears_s=0.002, busy_s=0.03)) < LIMIT_S, "an answer a moment behind"
    assert LIMIT_S <= waited(Writer(busy_s=10.0)) < 5 * LIMIT_S, "bounded"
    assert waited(Writer(busy_s=10.0), limit_s=0.0) < LIMIT_S / 2, "no hold: asked at once"


async def test_a_words_question_waits_for_the_answers_first_clause_as_long_as_the_session_lets_it() -> None:
    words = FixedWords(1e-3)
    engines = fake_set(
        end_of_turn_text=words,
        chat=Writer(busy_s=10.0),  # type: ignore[arg-type]
    )

    async def asked(hold_ms: float) -> float:
        started = time.monotonic()
        results = engines.run_job(ScoreTurnWords("job_1", "item_1", "what is the time", hold_ms=hold_ms))
        assert results is not None
        [result] = [r async for r in results]
        assert isinstance(result, TurnEndPredicted)
        assert result.probability == pytest.approx(1e-3)
        return time.monotonic() - started

    try:
        assert 0.06 <= await asked(60) < 0.06 + 4 * LIMIT_S
        assert await asked(0) < 0.06
    finally:
        engines.close()
