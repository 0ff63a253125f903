"""Piper neural speech synthesis (piper-tts 1.8, ONNX), English by default with ``en_US-joe-medium``.

This module owns :class:`PiperSynthesizer`: loading one or more piper ``.onnx`` voices into ONNX Runtime
sessions with a bounded thread count, mapping the voice names a client asks for (OpenAI's ``alloy`` ...
``cedar``, a piper voice name, or anything else) onto the loaded voices and speakers, and streaming audio
at the speed each call asks for (piper's length scale, set per call). Piper and onnxruntime errors
become :class:`EngineError` in :meth:`_next_chunk`.

**Streamed within a sentence.** A piper voice is one ONNX graph: text encoder, duration predictor and
flow (a third of the time), then a HiFi-GAN decoder from latent frames to samples (two thirds, in
proportion to the audio's length). Piper runs it whole and hands out a sentence at a time, so the
first sample of an answer waited for its whole first clause (~70 ms on two cores for 1.7 s of speech).
At load the graph is split at the decoder's input (:class:`_SplitVoice`); a sentence's latent frames
are then decoded a piece at a time, the first piece short (:data:`FIRST_PIECE_FRAMES`), each with
:data:`CONTEXT_FRAMES` of the frames around it decoded too and cut off. The decoder sees less than
that around a sample, so the pieces join into exactly the audio of one whole decode (a test compares
them). Piper scales each sentence to full scale by its own peak, which a stream cannot know before its
end; the split voice applies one gain instead, the voice's own, measured at load on a calibration
passage (with headroom: sentences then peak at about 0.6 of full scale, the loudest under it). A
graph that cannot be split (no ``dec/conv_pre`` node) is run whole, as piper does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.engines.model_files import joe_voice
from openrealtime.exceptions import EngineError

#: The voice names of OpenAI's Realtime API, in the order they are dealt onto the loaded voices.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
DEFAULT_THREADS = 2
FIRST_PIECE_FRAMES = 24  # ~280 ms of speech at 22.05 kHz: decoded in ~10 ms, the rest long before it ends
MAX_PIECE_FRAMES = 128  # the later pieces (each decodes its context too: fewer is cheaper)
MIN_PIECE_FRAMES = 12  # a last piece shorter than this joins the one before
# Decoded on each side of a piece and dropped: joe-medium's decoder reaches 10 frames (9 differ at
# -88 dB, 10 are exact); 12 for voices whose decoder reaches a little further.
CONTEXT_FRAMES = 12
DECODER_INPUT_NODE = "/dec/conv_pre/Conv"  # the HiFi-GAN decoder's first node in piper's exports
# Spoken at load through each split voice, without the generator's noise: its peak sets the voice's
# gain (for piper's peak per sentence), at CALIBRATED_PEAK of full scale. With the noise, sentences peak
# 0.65-1.46 times as high (p50 0.95, 70 sentences): 0.65 keeps the loudest under full scale.
CALIBRATION_TEXT = "Good morning! The weather is lovely today, and I would be happy to help you plan the trip."
CALIBRATED_PEAK = 0.65
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
    on a small CPU only slow each other down, so one lock serializes inference *per piece* (per
    sentence for a voice run whole): it is never held across a ``yield``, and concurrent responses
    take turns piece by piece.

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
        self._split: list[_SplitVoice | None] = []  # each voice's decoder apart, to stream a sentence
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
            split = _SplitVoice.load(model_path, session_options)
            session = None  # a split voice runs its two parts; piper's voice only phonemizes for it
            if split is None:
                session = onnxruntime.InferenceSession(
                    str(model_path), sess_options=session_options, providers=["CPUExecutionProvider"]
                )
            voice = voice_class(session=session, config=config)
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise EngineError(f"cannot load piper voice {model_path}: {exc}", code="tts_failed") from exc
        if split is not None:
            split.calibrate(voice)
        self._split.append(split)
        return voice

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
        """Speak ``text``, yielding float32 chunks at :attr:`sample_rate_hz`: each sentence in pieces, the
        first ~280 ms long (one chunk a sentence for a voice that cannot be split).

        Args:
            text: What to say (English for the default voice).
            voice: A name from :meth:`voices` or anything else (the first voice speaks it).
            stop: Checked before each piece; once set, nothing more is synthesized.
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
        split = self._split[slot.model]
        if split is not None:
            yield from self._stream(model, split, text, config, stop)
            return
        chunks = iter(model.synthesize(text, syn_config=config))
        while not stop.is_set():
            audio = self._next_chunk(chunks)
            if audio is None:
                return
            if audio.size and not stop.is_set():
                yield audio

    def _stream(
        self, model: Any, split: _SplitVoice, text: str, config: Any, stop: threading.Event
    ) -> Iterator[Samples]:
        """Speak ``text`` sentence by sentence, each sentence's audio a piece at a time."""
        try:
            sentences = [model.phonemes_to_ids(phonemes) for phonemes in model.phonemize(text) if phonemes]
        except Exception as exc:  # espeak-ng / piper's phoneme map
            raise EngineError(f"piper synthesis failed: {exc}", code="tts_failed") from exc
        gain = split.gain * self.options.volume
        for ids in sentences:
            if stop.is_set():
                return
            inputs = _graph_inputs(model, ids, config)
            frames = self._locked(split.frames, inputs)
            for start, end in _pieces(frames.shape[2]):
                if stop.is_set():
                    return
                audio = self._locked(split.decode, frames, start, end)
                if audio.size:
                    yield np.clip(audio * gain, -1.0, 1.0).astype(np.float32)

    def _locked(self, call: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
        """One inference under the lock (see the class); the place a split voice's errors are translated."""
        try:
            with self._lock:
                return call(*args)
        except Exception as exc:  # onnxruntime raises its own Exception types
            raise EngineError(f"piper synthesis failed: {exc}", code="tts_failed") from exc

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


class _SplitVoice:
    """A piper voice's graph in two: phoneme ids to latent frames, and the decoder, frames to samples."""

    def __init__(self, front: Any, decoder: Any, frames_name: str) -> None:
        self._front = front
        self._decoder = decoder
        self._frames_name = frames_name
        self._inputs = frozenset(i.name for i in front.get_inputs())  # "sid" only in multi-speaker graphs
        self.gain = 1.0

    @classmethod
    def load(cls, model_path: Path, options: Any) -> _SplitVoice | None:
        """Split the graph at the decoder's input; ``None`` when it has no node of that name."""
        import onnxruntime

        parts = _split_graph(str(model_path))
        if parts is None:
            return None
        front, decoder, frames_name = parts

        def session(part: bytes) -> Any:
            return onnxruntime.InferenceSession(part, sess_options=options, providers=["CPUExecutionProvider"])

        return cls(session(front), session(decoder), frames_name)

    def calibrate(self, voice: Any) -> None:
        """Set the gain that brings the calibration passage's peak to ``CALIBRATED_PEAK`` (spoken without
        the generator's noise, so every instance of a voice gets the same gain)."""
        quiet = SimpleNamespace(noise_scale=0.0, noise_w_scale=0.0)
        peak = 0.0
        for phonemes in voice.phonemize(CALIBRATION_TEXT):
            frames = self.frames(_graph_inputs(voice, voice.phonemes_to_ids(phonemes), quiet))
            peak = max(peak, float(np.max(np.abs(self.decode(frames, 0, frames.shape[2])))))
        self.gain = CALIBRATED_PEAK / peak if peak > 1e-3 else 1.0

    def frames(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The sentence's latent frames, (1, channels, frames)."""
        return np.asarray(self._front.run(None, {k: v for k, v in inputs.items() if k in self._inputs})[0])

    def decode(self, frames: np.ndarray, start: int, end: int, context: int = CONTEXT_FRAMES) -> Samples:
        """The samples of frames ``start:end``, decoded with ``context`` frames on each side."""
        first, last = max(0, start - context), min(frames.shape[2], end + context)
        audio = np.asarray(self._decoder.run(None, {self._frames_name: frames[:, :, first:last]})[0]).reshape(-1)
        hop = audio.size // (last - first)
        return audio[(start - first) * hop : (end - first) * hop]


def _split_graph(model_path: str) -> tuple[bytes, bytes, str] | None:
    """A piper graph's two parts, serialized, and the name of the tensor between them (not cached:
    the parts would stay in memory beside the sessions made of them, 63 MB for joe-medium)."""
    import onnx
    import onnx.utils

    graph = onnx.load(model_path)
    frames_name = next((n.input[0] for n in graph.graph.node if n.name == DECODER_INPUT_NODE), None)
    if frames_name is None:
        return None
    extractor = onnx.utils.Extractor(graph)
    front = extractor.extract_model([i.name for i in graph.graph.input], [frames_name])
    decoder = extractor.extract_model([frames_name], [graph.graph.output[0].name])
    return front.SerializeToString(), decoder.SerializeToString(), frames_name


def _pieces(count: int) -> Iterator[tuple[int, int]]:
    """A sentence's ``count`` frames as pieces to decode: the first short, the rest in as few as
    :data:`MAX_PIECE_FRAMES` allows (each piece decodes its context again), none of them tiny."""
    start, size = 0, FIRST_PIECE_FRAMES
    while start < count:
        end = count if count - start <= size + MIN_PIECE_FRAMES else start + size
        yield start, end
        start, size = end, MAX_PIECE_FRAMES


def _graph_inputs(voice: Any, ids: list[int], config: Any) -> dict[str, np.ndarray]:
    """The graph's inputs for one sentence's phoneme ids, as piper's ``phoneme_ids_to_audio`` makes them."""
    voice_config = voice.config

    def pick(name: str) -> float:
        value = getattr(config, name, None) if config is not None else None
        return float(value if value is not None else getattr(voice_config, name))

    inputs: dict[str, np.ndarray] = {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([pick("noise_scale"), pick("length_scale"), pick("noise_w_scale")], dtype=np.float32),
    }
    if voice_config.num_speakers > 1:
        speaker = getattr(config, "speaker_id", None) if config is not None else None
        inputs["sid"] = np.array([voice_config.default_speaker_id if speaker is None else speaker], dtype=np.int64)
    return inputs


def _language_base(code: str) -> str:
    """``"en-us"`` / ``"pt_BR"`` / ``" EN "`` -> ``"en"`` / ``"pt"`` / ``"en"``."""
    return _LANGUAGE_SEPARATOR.split(code.strip().lower(), maxsplit=1)[0]
