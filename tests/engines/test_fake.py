"""The fake synthesizer keeps the Synthesizer Protocol: speed and languages included."""

from __future__ import annotations

import threading

import pytest

from openrealtime.contracts import Synthesizer
from openrealtime.engines.fake import ToneSynthesizer
from openrealtime.engines.pool import SynthesizerPool


def samples(synthesizer: Synthesizer, text: str, speed: float = 1.0) -> int:
    return sum(c.size for c in synthesizer.synthesize(text, voice="tone", stop=threading.Event(), speed=speed))


@pytest.mark.parametrize("speed", [0.5, 1.0, 1.5])
def test_tone_duration_scales_with_speed(speed: float) -> None:
    tone = ToneSynthesizer()
    expected_ms = 5 * ToneSynthesizer.ms_per_char / speed
    assert samples(tone, "hello", speed) == round(expected_ms * ToneSynthesizer.sample_rate_hz / 1000)


def test_tone_speaks_every_language_unless_told_which() -> None:
    assert ToneSynthesizer().speaks("ja")
    some = ToneSynthesizer(languages={"es", "pt"})
    assert some.speaks("es")
    assert some.speaks("pt_BR")
    assert not some.speaks("en")


def test_a_pool_passes_speed_and_languages_through() -> None:
    pool = SynthesizerPool([ToneSynthesizer(languages={"es"}), ToneSynthesizer(languages={"es"})])
    assert samples(pool, "hello", 2.0) == samples(ToneSynthesizer(), "hello", 2.0)
    assert pool.speaks("es")
    assert not pool.speaks("en")
