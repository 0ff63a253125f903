"""Piper neural speech synthesis (piper-tts 1.8, ONNX), English by default with ``en_US-joe-medium``.

This module owns :class:`PiperSynthesizer`: loading one or more piper ``.onnx`` voices into ONNX Runtime
sessions with a bounded thread count, mapping the voice names a client asks for (OpenAI's ``alloy`` ...
``cedar``, a piper voice name, or anything else) onto the loaded voices and speakers, and streaming audio
sentence by sentence at the speed each call asks for (piper's length scale, set per call). Piper and
onnxruntime errors become :class:`EngineError` in :meth:`_next_chunk`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.engines.model_files import joe_voice
from openrealtime.exceptions import EngineError

#: The voice names of OpenAI's Realtime API, in the order they are dealt onto the loaded voices.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
DEFAULT_THREADS = 2
_SPEAKER_SEPARATOR = ":"  # "model:speaker" names one speaker of a multi-speaker piper voice
_LANGUAGE_SEPARATOR = re.compile(r"[-_]")


@dataclass(frozen=True)
class PiperOptions:
    """Options of :class:`PiperSynthesizer`.

    Attributes:
        model_paths: Piper ``.onnx`` voices, each with its ``.onnx.json`` config beside it; empty means
            the registry-shipped ``en_US-joe-medium`` (checked against its pinned sha256). All voices must
            share one sample rate.
        n_threads: ONNX Runtime intra-op threads of each voice.
        length_scale: Duration multiplier (above 1 speaks slower) at speed 1; ``None`` keeps each
            voice's own.
        noise_scale: Generator noise; ``None`` keeps each voice's own.
        noise_w_scale: Phoneme-duration noise; ``None`` keeps each voice's own.
        volume: Gain applied after piper's peak normalization, in (0, 1].
    """

    model_paths: tuple[Path, ...] = ()
    n_threads: int = DEFAULT_THREADS
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0


@dataclass(frozen=True)
class _Slot:
    """One speakable voice: a loaded model and, for multi-speaker models, one speaker id."""

    name: str
    model: int
    speaker_id: int | None


class PiperSynthesizer:
    """A :class:`~openrealtime.contracts.Synthesizer` over piper voices.

    :meth:`voices` lists the piper voices (``en_US-joe-medium``, or ``model:speaker`` for each speaker of
    a multi-speaker model) followed by OpenAI's voice names. OpenAI's names are dealt round-robin onto
    the piper voices, so with several loaded voices ``alloy`` and ``ash`` sound different; with the one
    default voice they are all Joe. Any other string speaks the first voice.

    One instance serves every session. ONNX Runtime sessions are thread safe, but two inferences at once
    on a small CPU only slow each other down, so one lock serializes inference *per sentence*: it is
    never held across a ``yield``, and concurrent responses take turns sentence by sentence.

    Args:
        options: Which voices to load and how to synthesize.

    Raises:
        EngineError: If a voice file is missing, fails its checksum or cannot be loaded.
    """

    def __init__(self, options: PiperOptions | None = None) -> None:
        self.options = options or PiperOptions()
        try:
            from piper import PiperVoice, SynthesisConfig  # heavy: imported in this module only
            from piper.config import PiperConfig
        except ImportError as exc:
            raise EngineError(
                "piper-tts is not installed; run the set-up (see README)", code="model_not_installed"
            ) from exc
        paths = (
            [(path, Path(f"{path}.json")) for path in self.options.model_paths]
            if self.options.model_paths
            else [joe_voice()]
        )
        self._voices: list[Any] = []
        self._slots: list[_Slot] = []
        for index, (model_path, config_path) in enumerate(paths):
            voice = self._load(PiperVoice, PiperConfig, model_path, config_path)
            self._voices.append(voice)
            name = model_path.name.removesuffix(".onnx")
            speakers = dict(voice.config.speaker_id_map)
            if voice.config.num_speakers > 1 and speakers:
                self._slots += [
                    _Slot(f"{name}{_SPEAKER_SEPARATOR}{speaker}", index, sid)
                    for speaker, sid in sorted(speakers.items(), key=lambda item: item[1])
                ]
            else:
                self._slots.append(_Slot(name, index, None))
        rates = {voice.config.sample_rate for voice in self._voices}
        if len(rates) != 1:
            raise EngineError(f"piper voices have different sample rates {sorted(rates)}", code="tts_failed")
        self.sample_rate_hz: int = rates.pop()
        # Each voice speaks the language of its espeak-ng phonemizer voice ("en-us" -> "en").
        self._languages = frozenset(_language_base(voice.config.espeak_voice) for voice in self._voices)
        self._by_name = {slot.name: slot for slot in self._slots}
        for i, openai_name in enumerate(OPENAI_VOICES):
            self._by_name.setdefault(openai_name, self._slots[i % len(self._slots)])
        self._synthesis_config = SynthesisConfig
        self._lock = threading.Lock()

    def _load(self, voice_class: Any, config_class: Any, model_path: Path, config_path: Path) -> Any:
        import onnxruntime

        try:
            with open(config_path, encoding="utf-8") as f:
                config = config_class.from_dict(json.load(f))
            session_options = onnxruntime.SessionOptions()
            session_options.intra_op_num_threads = self.options.n_threads
            session_options.inter_op_num_threads = 1
            # Idle threads sleep instead of spinning: a spinning thread takes a core from the other
            # engines (Whisper, the LLM) that run at the same time for other sessions.
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise EngineError(f"cannot load piper voice {model_path}: {exc}", code="tts_failed") from exc
        return voice_class(session=session, config=config)

    def voices(self) -> Sequence[str]:
        """Piper voice names first, then OpenAI's voice names; every one is accepted by :meth:`synthesize`."""
        return tuple(slot.name for slot in self._slots) + OPENAI_VOICES

    def resolve_voice(self, voice: str) -> str:
        """The piper voice (``model`` or ``model:speaker``) that ``voice`` speaks with."""
        slot = self._by_name.get(voice) or self._by_name.get(voice.strip().lower()) or self._slots[0]
        return slot.name

    def speaks(self, language: str) -> bool:
        """Whether a loaded voice speaks ``language`` (its base code: ``en-GB`` is English)."""
        return _language_base(language) in self._languages

    def synthesize(self, text: str, *, voice: str, stop: threading.Event, speed: float = 1.0) -> Iterator[Samples]:
        """Speak ``text``, yielding one float32 chunk per sentence at :attr:`sample_rate_hz`.

        Args:
            text: What to say (English for the default voice).
            voice: A name from :meth:`voices` or anything else (the first voice speaks it).
            stop: Checked before each sentence; once set, nothing more is synthesized.
            speed: Speaking rate as a multiple of the voice's own: the length scale is divided by it.

        Yields:
            Mono float32 audio in [-1, 1].

        Raises:
            EngineError: If piper or onnxruntime fail.
        """
        slot = self._by_name[self.resolve_voice(voice)]
        model = self._voices[slot.model]
        length_scale = self.options.length_scale
        if length_scale is None:
            length_scale = model.config.length_scale
        config = self._synthesis_config(
            speaker_id=slot.speaker_id,
            length_scale=length_scale / speed,
            noise_scale=self.options.noise_scale,
            noise_w_scale=self.options.noise_w_scale,
            volume=self.options.volume,
        )
        if not text.strip():
            return
        chunks = iter(model.synthesize(text, syn_config=config))
        while not stop.is_set():
            audio = self._next_chunk(chunks)
            if audio is None:
                return
            if audio.size and not stop.is_set():
                yield audio

    def _next_chunk(self, chunks: Iterator[Any]) -> Samples | None:
        """Synthesize the next sentence under the lock; the one place piper errors are translated."""
        try:
            with self._lock:
                chunk = next(chunks, None)
        except Exception as exc:  # piper raises ValueError/KeyError, onnxruntime its own Exception types
            raise EngineError(f"piper synthesis failed: {exc}", code="tts_failed") from exc
        if chunk is None:
            return None
        return np.ascontiguousarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)


def _language_base(code: str) -> str:
    """``"en-us"`` / ``"pt_BR"`` / ``" EN "`` -> ``"en"`` / ``"pt"`` / ``"en"``."""
    return _LANGUAGE_SEPARATOR.split(code.strip().lower(), maxsplit=1)[0]
