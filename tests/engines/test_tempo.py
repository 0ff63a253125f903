"""Faster speech on request: espeak-ng by its rate, other engines unchanged."""

from __future__ import annotations

import threading

from openrealtime.engines.espeak_tts import EspeakSynthesizer
from openrealtime.engines.fake import ToneSynthesizer
from openrealtime.engines.tempo import at_speed

TEXT = "Me gustaría reservar una mesa para dos personas esta noche."


def seconds(synthesizer: object) -> float:
    chunks = synthesizer.synthesize(TEXT, voice="es", stop=threading.Event())  # type: ignore[attr-defined]
    return sum(c.size for c in chunks) / synthesizer.sample_rate_hz  # type: ignore[attr-defined]


def test_espeak_speaks_faster_and_variants_are_shared() -> None:
    espeak = EspeakSynthesizer()
    faster = at_speed(espeak, 1.3)
    assert faster is not espeak
    assert faster.options.rate_wpm == round(espeak.options.rate_wpm * 1.3)  # type: ignore[attr-defined]
    assert at_speed(espeak, 1.31) is faster  # rounded to 0.05 steps
    assert at_speed(espeak, 1.0) is espeak
    assert seconds(faster) < 0.85 * seconds(espeak)


def test_engines_without_a_rate_speak_at_their_own_pace() -> None:
    tone = ToneSynthesizer()
    assert at_speed(tone, 1.3) is tone
