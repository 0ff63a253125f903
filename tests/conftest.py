"""Shared fixtures: fake and real engine sets, scripted audio, and one timeout constant."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.runtime.engines import EngineSet

# Every timeout in the tests is a multiple of this; raise OPENREALTIME_TEST_TIMEOUT_SCALE on slow machines.
TIMEOUT_S = 20.0 * float(os.environ.get("OPENREALTIME_TEST_TIMEOUT_SCALE", "1"))
WIRE_RATE_HZ = 24_000


def tone(ms: int, *, amplitude: float = 0.1, freq_hz: float = 300.0, rate_hz: int = WIRE_RATE_HZ) -> np.ndarray:
    t = np.arange(rate_hz * ms // 1000, dtype=np.float32) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def quiet(ms: int, *, rate_hz: int = WIRE_RATE_HZ) -> np.ndarray:
    return np.zeros(rate_hz * ms // 1000, dtype=np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return float_to_pcm16(samples)


@pytest.fixture
def fake_engines() -> Iterator[EngineSet]:
    engines = EngineSet(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake")
    yield engines
    engines.close()


@pytest.fixture(scope="session")
def real_engines() -> Iterator[EngineSet]:
    """The default offline models, loaded once for the whole run."""
    from openrealtime.server.registry import load_engines
    from openrealtime.server.settings import Settings

    engines = load_engines(Settings())
    yield engines
    engines.close()
