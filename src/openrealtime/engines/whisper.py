"""Whisper ASR through faster-whisper's CTranslate2 model, decoded for streaming.

Whisper was trained on 30 s windows, and faster-whisper always pads to 30 s, which puts a floor of
about 0.4 s under every decode on two cores. Live captions decode a growing turn many times, so this
engine pads only to the next 5 s bucket above the audio plus a margin (at least 10 s): encoding costs
a third as much, and the silence margin keeps the decoder from looping, which it does when the
features end right after the speech. Longer audio (over 30 s) goes through faster-whisper's own
chunked ``transcribe``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions, Transcript, TranscriptSegment
from openrealtime.engines import model_files
from openrealtime.exceptions import EngineError

SAMPLE_RATE_HZ = 16_000
MAX_WINDOW_S = 30.0
MIN_WINDOW_S = 10.0
WINDOW_BUCKET_S = 5.0
SILENCE_MARGIN_S = 4.0
SECONDS_PER_TIMESTAMP = 0.02
MAX_DECODE_TOKENS = 440
TOKENS_PER_SECOND_CAP = 12  # fast speech is about 4 tokens/s: anything beyond this is a loop
NO_SPEECH_THRESHOLD = 0.8
MAX_PROMPT_TOKENS = 223  # Whisper's limit for previous-text conditioning


@dataclass(frozen=True)
class WhisperOptions:
    """Options of the Whisper engine.

    Attributes:
        model: ``"tiny.en"`` (bundled, English), ``"base"`` (bundled, multilingual), a directory of a
            CTranslate2 Whisper model, or a faster-whisper model name already in the local cache.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        compute_type: CTranslate2 compute type (``int8`` on CPU, ``float16`` on GPU).
        threads: CPU threads for one decode.
        workers: Decodes that may run at once (each with ``threads`` threads). On a small CPU, two
            one-thread workers serve concurrent sessions better than one two-thread worker.
        beam_size: 1 is greedy: fastest, and within a point of beam 5 on clear speech.
    """

    model: str = "tiny.en"
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 2
    workers: int = 1
    beam_size: int = 1


def _resolve_model(name: str) -> str:
    if name == "tiny.en":
        return str(model_files.whisper_tiny_en_dir())
    if name == "base":
        return str(model_files.whisper_base_dir())
    return name


class WhisperTranscriber:
    """A :class:`~openrealtime.contracts.Transcriber`; one instance serves all sessions."""

    sample_rate_hz = SAMPLE_RATE_HZ

    def __init__(self, options: WhisperOptions | None = None) -> None:
        from faster_whisper import WhisperModel

        self.options = options or WhisperOptions()
        path = _resolve_model(self.options.model)
        try:
            self._model = WhisperModel(
                path,
                device=self.options.device,
                compute_type=self.options.compute_type,
                cpu_threads=self.options.threads,
                num_workers=self.options.workers,
                local_files_only=True,
            )
        except Exception as exc:  # ctranslate2 / huggingface_hub raise many unrelated types
            raise EngineError(
                f"cannot load Whisper model {self.options.model!r}: {exc}", code="model_load_failed"
            ) from exc
        self.multilingual = bool(self._model.model.is_multilingual)
        self._slots = threading.BoundedSemaphore(self.options.workers)

    def transcribe(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        try:
            with self._slots:
                duration_s = audio.size / SAMPLE_RATE_HZ
                if duration_s > MAX_WINDOW_S - SILENCE_MARGIN_S:
                    return self._transcribe_long(audio, options)
                return self._decode_window(audio, options)
        except EngineError:
            raise
        except Exception as exc:  # the one place where CTranslate2 errors become ours
            raise EngineError(f"Whisper failed: {exc}", code="transcription_failed") from exc

    def _tokenizer(self, language: str | None, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self._model.hf_tokenizer, self.multilingual, task=task, language=language)

    def _decode_window(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        import ctranslate2

        duration_s = audio.size / SAMPLE_RATE_HZ
        window_s = min(
            MAX_WINDOW_S,
            max(MIN_WINDOW_S, math.ceil((duration_s + SILENCE_MARGIN_S) / WINDOW_BUCKET_S) * WINDOW_BUCKET_S),
        )
        padded = np.zeros(int(window_s * SAMPLE_RATE_HZ), dtype=np.float32)
        padded[: audio.size] = audio
        features = self._model.feature_extractor(padded, padding=0)
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], dtype=np.float32))

        language = options.language if self.multilingual else "en"
        if self.multilingual and language is None:
            scores = self._model.model.detect_language(storage)[0]
            language = scores[0][0].strip("<|>")
        tokenizer = self._tokenizer(language, options.task)
        prompt: list[int] = []
        if options.prompt:
            prompt = [
                tokenizer.sot_prev,
                *tokenizer.encode(" " + options.prompt.strip())[-MAX_PROMPT_TOKENS:],
            ]
        prompt += list(tokenizer.sot_sequence)
        if not options.timestamps:
            prompt.append(tokenizer.no_timestamps)
        max_tokens = min(MAX_DECODE_TOKENS, len(prompt) + 8 + int(duration_s * TOKENS_PER_SECOND_CAP))
        result = self._model.model.generate(
            storage,
            [prompt],
            beam_size=self.options.beam_size,
            max_length=max_tokens,
            suppress_blank=True,
            suppress_tokens=[-1],
            return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob > NO_SPEECH_THRESHOLD:
            return Transcript(text="", segments=(), language=language)
        ids = [t for t in result.sequences_ids[0] if t != tokenizer.eot]
        segments = self._segments(ids, tokenizer, duration_s) if options.timestamps else ()
        if options.timestamps:
            text = " ".join(s.text for s in segments)
        else:
            text = tokenizer.decode([t for t in ids if t < tokenizer.eot]).strip()
        return Transcript(text=text, segments=segments, language=language)

    @staticmethod
    def _segments(ids: list[int], tokenizer: Any, duration_s: float) -> tuple[TranscriptSegment, ...]:
        """Split timestamped output; drop segments that start where the real audio has ended."""
        begin = tokenizer.timestamp_begin
        segments: list[TranscriptSegment] = []
        start_s = 0.0
        text_ids: list[int] = []
        for token in ids:
            if token >= begin:
                time_s = (token - begin) * SECONDS_PER_TIMESTAMP
                if text_ids:
                    text = tokenizer.decode(text_ids).strip()
                    if text and start_s < duration_s:
                        segments.append(TranscriptSegment(text, start_s, min(time_s, duration_s)))
                    text_ids = []
                start_s = time_s
            elif token < tokenizer.eot:
                text_ids.append(token)
        if text_ids and start_s < duration_s:
            text = tokenizer.decode(text_ids).strip()
            if text:
                segments.append(TranscriptSegment(text, start_s, duration_s))
        return tuple(segments)

    def _transcribe_long(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        segments, info = self._model.transcribe(
            audio,
            language=options.language if self.multilingual else "en",
            task=options.task,
            beam_size=self.options.beam_size,
            initial_prompt=options.prompt,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        parts = tuple(TranscriptSegment(s.text.strip(), s.start, s.end) for s in segments if s.text.strip())
        return Transcript(text=" ".join(p.text for p in parts), segments=parts, language=info.language)


def model_path(options: WhisperOptions) -> Path:
    """Where the model of ``options`` lives on disk (for diagnostics)."""
    return Path(_resolve_model(options.model))
