"""The engine set runs end-of-turn questions on its own threads, or fails them without a model."""

from __future__ import annotations

import numpy as np
import pytest

from openrealtime.engines.fake import EnergyVad, FakeTranscriber, FixedEndOfTurn
from openrealtime.exceptions import EngineError
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.commands import END_OF_TURN_UNAVAILABLE, PredictTurnEnd, TurnEndPredicted


async def answers(engines: EngineSet, command: PredictTurnEnd) -> list[object]:
    results = engines.run_job(command)
    assert results is not None
    return [result async for result in results]


async def test_a_question_is_answered_with_the_models_probability() -> None:
    model = FixedEndOfTurn(0.75)
    engines = EngineSet(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake", end_of_turn=model)
    try:
        audio = np.zeros(16_000, np.float32)
        assert await answers(engines, PredictTurnEnd("job_1", "item_1", audio)) == [TurnEndPredicted("job_1", 0.75)]
        assert model.heard_samples == [16_000]
    finally:
        engines.close()


async def test_without_a_model_the_question_fails_as_unavailable() -> None:
    engines = EngineSet(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake")
    try:
        with pytest.raises(EngineError) as failure:
            await answers(engines, PredictTurnEnd("job_1", "item_1", np.zeros(10, np.float32)))
        assert failure.value.code == END_OF_TURN_UNAVAILABLE
    finally:
        engines.close()
