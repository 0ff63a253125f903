"""The engine set runs a Synthesize command at the speed it asks for, within the contract's range."""

from __future__ import annotations

import pytest

from openrealtime.contracts import MAX_SPEED
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.session.commands import AudioChunk, Synthesize


async def spoken_samples(speed: float) -> int:
    engines = EngineSet(
        vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake", synthesizers={"*": ToneSynthesizer()}
    )
    try:
        job = engines.run_job(Synthesize("job_1", "hello", speed=speed))
        assert job is not None
        return sum([result.audio.size async for result in job if isinstance(result, AudioChunk)])
    finally:
        engines.close()


@pytest.mark.parametrize("speed", [0.5, 1.0, 1.5])
async def test_the_command_speed_reaches_the_synthesizer(speed: float) -> None:
    assert await spoken_samples(speed) == round(await spoken_samples(1.0) / speed)


async def test_a_speed_beyond_the_range_is_clamped() -> None:
    assert await spoken_samples(10.0) == await spoken_samples(MAX_SPEED)
