"""Transcribe synthesized audio back with Whisper tiny.en, to check that a TTS engine said the words."""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import soxr

from openrealtime.audio.types import Samples
from openrealtime.engines.model_files import whisper_tiny_en_dir

WHISPER_RATE_HZ = 16_000


@functools.cache
def _model() -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(audio: Samples, sample_rate_hz: int) -> str:
    """Lower-case words Whisper hears in ``audio``, joined by single spaces."""
    audio16 = np.asarray(soxr.resample(audio, sample_rate_hz, WHISPER_RATE_HZ), dtype=np.float32)
    segments, _ = _model().transcribe(
        audio16, beam_size=1, language="en", without_timestamps=True, condition_on_previous_text=False
    )
    text = " ".join(segment.text for segment in segments)
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))
