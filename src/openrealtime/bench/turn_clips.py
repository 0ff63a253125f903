"""The clips of ``bench turns``: the pause set (part 1) and the voices every part speaks in.

See :mod:`~openrealtime.bench.turns` for how a pause is made where a speaker would make it: the whole
sentence is synthesized with each ``|`` spoken as a comma, the comma's gap found in the audio and
stretched to 400-900 ms, and Whisper checks that the words before it are the right ones. Clips are
cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16, pcm16_to_float
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.engines.model_files import cache_dir

MS_PER_S = 1000
ASR_RATE_HZ = 16_000
PAUSES_MS = (400, 600, 900)  # mid-sentence pauses, cycled over the set (the 400-900 ms)
GAP_FRAME_MS = 10  # the frames gaps are found in
GAP_FLOOR_RMS = 0.01  # a frame under this RMS is quiet
MIN_GAP_MS = 60  # a quiet run shorter than this is a stop consonant, not a gap
GAP_KEEP_MS = 30  # of a gap, what stays before the inserted silence (the voice's own decay)
SPEECH_FLOOR = 0.01  # |sample| above this counts as speech when finding where the last word ends

# "|" marks a pause a hesitating speaker makes; sentences without one are spoken in one go.
PAUSED = (
    "I'd like to book a table for | two people, at | seven tonight.",
    "Can you tell me how to get to the | train station from here?",
    "My phone number is | five five five, | one two three four.",
    "I was wondering if you could | help me with my | homework.",
    "Please remind me to call | my mother tomorrow | morning.",
    "The meeting has been moved to | Thursday afternoon.",
    "I need a flight from | Boston to | Chicago on Friday.",
    "What is the weather going to be like in | Paris this weekend?",
    "Could you send the report to | the whole team before | noon?",
    "My name is | John and I live in | Seattle.",
)
COMPLETE = (
    "What is the capital of France?",
    "How many days are in a week?",
    "Thank you very much for your help.",
    "Please turn off the lights.",
    "Which ocean is the largest?",
)
# (engine, speed): the installed voices, at several rates of speech.
VOICES = (("piper", 0.9), ("piper", 1.15), ("espeak", 1.0))


@dataclass(frozen=True)
class Clip:
    """One utterance as it is streamed: audio at 24 kHz, where its pauses are, where its speech ends.

    Attributes:
        text: The sentence, ``|`` where it pauses.
        voice: ``engine@speed``.
        audio: float32 at ``WIRE_RATE_HZ``, without lead silence.
        pauses_ms: Each pause as ``(start, end)`` in ms from the clip's start.
        speech_end_ms: Where the last word ends.
    """

    text: str
    voice: str
    audio: Samples
    pauses_ms: tuple[tuple[int, int], ...]
    speech_end_ms: int

    @property
    def paused(self) -> bool:
        return bool(self.pauses_ms)


# --- the pause set ----------------------------------------------------------------------------------


_lock = threading.Lock()
_engines: dict[str, Any] = {}


def _engine(name: str) -> Any:
    with _lock:
        if name not in _engines:
            if name == "piper":
                from openrealtime.engines.piper_tts import PiperSynthesizer

                _engines[name] = PiperSynthesizer()
            elif name == "espeak":
                from openrealtime.engines.espeak_tts import EspeakSynthesizer

                _engines[name] = EspeakSynthesizer()
            else:
                from faster_whisper import WhisperModel

                from openrealtime.engines.model_files import whisper_tiny_en_dir

                _engines[name] = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8")
        return _engines[name]


def synthesize(text: str, engine: str, speed: float) -> Samples:
    """``text`` spoken by ``engine`` ("piper" or "espeak") at ``speed``, float32 at 24 kHz."""
    synthesizer = _engine(engine)
    chunks = list(synthesizer.synthesize(text, voice="alloy", stop=threading.Event(), speed=speed))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    resampler = StreamResampler(synthesizer.sample_rate_hz, WIRE_RATE_HZ)
    return np.concatenate([resampler.process(audio), resampler.flush()]).astype(np.float32)


def _cached(folder: str, *parts: object) -> Path:
    """Where the bench keeps what it made of ``parts`` in ``folder`` of the cache (no suffix)."""
    return cache_dir() / folder / hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def cached_speech(text: str, engine: str, speed: float) -> Samples:
    """:func:`synthesize`'s audio for ``text``, made once and then read from disk (as 16-bit PCM):
    piper's synthesis is random, so benches that compare settings on the same speech read it here."""
    path = _cached("speech", text, engine, speed).with_suffix(".pcm")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_suffix(f".{os.getpid()}.tmp")  # whole or not at all: benches run side by side
        made.write_bytes(float_to_pcm16(np.clip(synthesize(text, engine, speed), -1.0, 1.0)))
        os.replace(made, path)
    return pcm16_to_float(path.read_bytes())


def transcribe(audio: Samples) -> str:
    """What Whisper ``tiny.en`` hears in ``audio`` (24 kHz)."""
    model = _engine("whisper")
    audio_16k = StreamResampler(WIRE_RATE_HZ, ASR_RATE_HZ).process(audio, last=True)
    segments, _ = model.transcribe(audio_16k, language="en", beam_size=1, condition_on_previous_text=False)
    return " ".join(segment.text.strip() for segment in segments)


def _letters(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalpha())


def quiet_runs(audio: Samples) -> list[tuple[int, int]]:
    """The quiet runs (start, end) in samples of at least ``MIN_GAP_MS`` inside the speech of ``audio``."""
    frame = WIRE_RATE_HZ * GAP_FRAME_MS // MS_PER_S
    count = audio.size // frame
    rms = np.sqrt(np.mean(np.square(audio[: count * frame].reshape(count, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > GAP_FLOOR_RMS)
    runs: list[tuple[int, int]] = []
    if not loud.size:
        return runs
    run_start: int | None = None
    for index in range(int(loud[0]), int(loud[-1]) + 1):
        if rms[index] <= GAP_FLOOR_RMS:
            run_start = index if run_start is None else run_start
            continue
        if run_start is not None and (index - run_start) * GAP_FRAME_MS >= MIN_GAP_MS:
            runs.append((run_start * frame, index * frame))
        run_start = None
    return runs


def find_gaps(text: str, audio: Samples) -> list[tuple[int, int]] | None:
    """The gap of each ``|`` of ``text`` in ``audio`` (the sentence spoken with commas for them).

    The longest quiet runs, as many as the spoken text has commas, are the commas' gaps, in order;
    ``None`` when there are too few.
    """
    spoken = text.replace(" |", ",").replace(",,", ",")
    marks = [part.rstrip().endswith("|") for part in re_split_commas(text)]
    runs = quiet_runs(audio)
    if len(runs) < len(marks):
        return None
    longest = sorted(sorted(runs, key=lambda r: r[1] - r[0], reverse=True)[: len(marks)])
    assert spoken.count(",") == len(marks)
    return [gap for gap, marked in zip(longest, marks, strict=True) if marked]


def re_split_commas(text: str) -> list[str]:
    """``text`` cut after each ``|`` or comma (the pieces a comma-spoken sentence pauses after)."""
    pieces: list[str] = []
    current = ""
    for char in text:
        current += char
        if char in ",|":
            pieces.append(current)
            current = ""
    # "two people, at |": a comma right before a "|" is one pause, the "|"'s.
    merged: list[str] = []
    for piece in pieces:
        if merged and piece.strip() == "|" and merged[-1].rstrip().endswith(","):
            merged[-1] = merged[-1].rstrip()[:-1] + " |"
        else:
            merged.append(piece)
    return merged


def words_match(text: str, audio: Samples, gaps: list[tuple[int, int]]) -> bool:
    """Whisper hears the word before each ``|`` just before its gap."""
    for part, (gap_start, _) in zip(text.split("|")[:-1], gaps, strict=True):
        heard = transcribe(audio[:gap_start]).split()
        if not heard or _letters(heard[-1]) != _letters(part.split()[-1]):
            return False
    return True


def insert_pauses(
    audio: Samples, gaps: list[tuple[int, int]], pauses_ms: list[int]
) -> tuple[Samples, list[tuple[int, int]]]:
    """``audio`` with each gap (start, end) in samples replaced by ``pauses_ms[i]`` of silence after
    its first ``GAP_KEEP_MS``; returns it and each pause's (start, end) in ms."""
    keep = WIRE_RATE_HZ * GAP_KEEP_MS // MS_PER_S
    parts: list[Samples] = []
    spans: list[tuple[int, int]] = []
    previous, length = 0, 0
    for (gap_start, gap_end), pause_ms in zip(gaps, pauses_ms, strict=True):
        cut = min(gap_start + keep, gap_end)
        parts.append(audio[previous:cut])
        length += cut - previous
        silence = np.zeros(WIRE_RATE_HZ * pause_ms // MS_PER_S, np.float32)
        parts.append(silence)
        start_ms = (length - (cut - gap_start)) * MS_PER_S // WIRE_RATE_HZ  # where the voice went quiet
        spans.append((start_ms, start_ms + pause_ms))
        length += silence.size
        previous = gap_end
    parts.append(audio[previous:])
    return np.concatenate(parts), spans


def speech_end_ms(audio: Samples) -> int:
    loud = np.flatnonzero(np.abs(audio) > SPEECH_FLOOR)
    return int(loud[-1]) * MS_PER_S // WIRE_RATE_HZ if loud.size else 0


def make_clip(text: str, engine: str, speed: float, pauses_ms: list[int]) -> Clip | None:
    """The clip of ``text`` (cached on disk); ``None`` when a pause's word could not be placed."""
    voice = f"{engine}@{speed:g}"
    stem = _cached("turns", text, voice, pauses_ms)
    audio_path, meta_path = stem.with_suffix(".pcm"), stem.with_suffix(".json")
    if audio_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("missing"):
            return None
        audio = pcm16_to_float(audio_path.read_bytes())
        spans = tuple((int(a), int(b)) for a, b in meta["pauses_ms"])
        return Clip(text, voice, audio, spans, int(meta["speech_end_ms"]))
    stem.parent.mkdir(parents=True, exist_ok=True)
    whole = synthesize(text.replace(" |", ",").replace(",,", ","), engine, speed)
    spans_list: list[tuple[int, int]] = []
    if "|" in text:
        gaps = find_gaps(text, whole)
        if gaps is None or not words_match(text, whole, gaps):
            meta_path.write_text(json.dumps({"missing": True}))
            return None
        whole, spans_list = insert_pauses(whole, gaps, pauses_ms[: len(gaps)])
    end_ms = speech_end_ms(whole)
    audio_path.write_bytes(float_to_pcm16(whole))
    meta_path.write_text(json.dumps({"pauses_ms": spans_list, "speech_end_ms": end_ms}))
    return Clip(text, voice, pcm16_to_float(float_to_pcm16(whole)), tuple(spans_list), end_ms)


def pause_set(limit: int | None = None) -> list[Clip]:
    """Every sentence in every voice (``limit`` sentences of each kind at most), pauses cycled."""
    paused = PAUSED[:limit] if limit else PAUSED
    complete = COMPLETE[:limit] if limit else COMPLETE
    clips: list[Clip] = []
    cycle = 0
    for engine, speed in VOICES:
        for text in (*paused, *complete):
            count = text.count("|")
            pauses = [PAUSES_MS[(cycle + i) % len(PAUSES_MS)] for i in range(count)]
            cycle += count
            clip = make_clip(text, engine, speed, pauses)
            if clip is not None:
                clips.append(clip)
    return clips
