"""Audio in and out for the CLI: WAV files (any rate, resampled to 24 kHz) and, when the optional
``sounddevice`` package is installed, the microphone and speaker."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from openrealtime.audio.codec import float_to_pcm16, pcm16_to_float
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples

WIRE_RATE_HZ = 24_000


def read_wav(path: Path, *, rate_hz: int = WIRE_RATE_HZ) -> Samples:
    """Read a PCM16 WAV (mono or the first channel), resampled to ``rate_hz``."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        channels, source_rate = w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    samples = pcm16_to_float(data)[::channels] if channels > 1 else pcm16_to_float(data)
    resampler = StreamResampler(source_rate, rate_hz)
    return np.concatenate([resampler.process(samples), resampler.flush()])


def write_wav(path: Path, samples: Samples, *, rate_hz: int = WIRE_RATE_HZ) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(float_to_pcm16(samples))


async def file_chunks(
    samples: Samples, *, chunk_ms: int, realtime: bool, rate_hz: int = WIRE_RATE_HZ
) -> AsyncIterator[bytes]:
    """PCM16 chunks of ``samples``; paced at real time (by the loop clock, not by sleeps adding up)."""
    loop = asyncio.get_running_loop()
    step = rate_hz * chunk_ms // 1000
    started = loop.time()
    for index, start in enumerate(range(0, samples.size, step)):
        if realtime:
            due = started + index * chunk_ms / 1000
            await asyncio.sleep(max(0.0, due - loop.time()))
        yield float_to_pcm16(samples[start : start + step])


async def microphone_chunks(*, chunk_ms: int, rate_hz: int = WIRE_RATE_HZ) -> AsyncIterator[bytes]:
    """PCM16 chunks from the default input device (needs ``pip install sounddevice``)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise SystemExit(
            "microphone input needs the 'sounddevice' package and PortAudio: "
            "pip install sounddevice (and apt-get install libportaudio2)"
        ) from exc
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)

    def offer(data: bytes) -> None:
        if not queue.full():  # a stalled consumer loses audio rather than memory
            queue.put_nowait(data)

    def callback(indata: np.ndarray, frames: int, time: object, status: object) -> None:
        loop.call_soon_threadsafe(offer, bytes(indata))

    with sd.RawInputStream(
        samplerate=rate_hz, channels=1, dtype="int16", blocksize=rate_hz * chunk_ms // 1000, callback=callback
    ):
        while True:
            yield await queue.get()
