"""Whisper ASR through faster-whisper's CTranslate2 model, decoded for streaming.

Whisper was trained on 30 s windows, and faster-whisper always pads to 30 s, which puts a floor of
about 0.4 s under every decode on two cores. Live captions decode a growing turn many times, so this
engine pads only to the next 5 s bucket above the audio plus a margin (at least 10 s): encoding costs
a third as much, and the silence margin keeps the decoder from looping, which it does when the
features end right after the speech. Longer audio (over 30 s) goes through faster-whisper's own
chunked ``transcribe``.

Every segment carries its token ids, the decode's ``avg_logprob`` and ``no_speech_prob`` (free: the
decoder computes them anyway). Two things cost more and are only done when asked for: the
log-probability of each token (``TranscribeOptions.logprobs``: CTranslate2 returns the logits of
each step, and a log-softmax picks the chosen token's) and word timings
(``TranscribeOptions.word_timestamps``: the audio is encoded once for the decode and for one
alignment pass of the decoder over the text, faster-whisper's ``find_alignment``).
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.types import Samples
from openrealtime.contracts import TokenLogprob, TranscribeOptions, Transcript, TranscriptSegment, WordTiming
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
# Fast speech is under 5 words a second. A short window's decode that reads faster has looped (tiny.en
# heard a 2.4 s question as "What is the longest river in Africa? What is the longest river in
# Africa? What is the", 7 words a second, in a 10 s window); it is decoded again in a 30 s one, unless
# the loop is the words said and then the same words again from their start (_loop_repaired): then
# the first time is the transcript. On bench turns' 40 clips, 5 pause decodes looped, each time the
# same: 4 of them so ("Could you send the report? Could you send the report?", 1.2 s), whose 30 s
# decodes said exactly the first time, 0.4-1.1 s later; one ended in "... ... ...", decoded again.
MAX_WORDS_PER_S = 6.0
MIN_REPEATED_WORDS = 3  # a loop taken as its first time repeats at least this many of its words
# The same words twice in full at more than this is a loop too: the final (beam) decode of the 2.4 s
# question above came back as it twice, whole, at 5.8 words a second, under MAX_WORDS_PER_S.
REPEATED_WORDS_PER_S = 4.0
MIN_LOOP_WORDS = 8  # fewer words than this are never called a loop (a quick "yes, I do")
NO_SPEECH_THRESHOLD = 0.8
MAX_PROMPT_TOKENS = 223  # Whisper's limit for previous-text conditioning
# Punctuation that word timings attach to the word after / before it (faster-whisper's defaults).
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


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
        beam_size: The beam of live captions' decodes: 1 is greedy, the fastest.
        final_beam_size: The beam of final decodes (``TranscribeOptions.final``). A beam of 5 costs a
            decode about a fifth more CPU than greedy and takes tiny.en's WER on the bench's 20
            sentences, as a turn hears them (300 ms of silence before), from 1.9 % to 0.9 %, the
            same as greedy on the bare clips (issue 14: live accuracy trailed offline). A decode
            asked for token log-probabilities stays greedy: CTranslate2 returns the logits of each
            step only for a greedy search.
    """

    model: str = "tiny.en"
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 2
    workers: int = 1
    beam_size: int = 1
    final_beam_size: int = 5

    def beam(self, options: TranscribeOptions) -> int:
        """The beam width of one decode."""
        return self.final_beam_size if options.final and not options.logprobs else self.beam_size


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
                transcript = self._decode_window(audio, options)
                if _looped(transcript.text, duration_s):
                    repaired = _loop_repaired(transcript.text, duration_s)
                    if repaired is not None and not transcript.segments:  # the text is all there is
                        return dataclasses.replace(transcript, text=repaired)
                    again = self._decode_window(audio, options, window_s=MAX_WINDOW_S)
                    if len(again.text.split()) < len(transcript.text.split()):
                        return again
                return transcript
        except EngineError:
            raise
        except Exception as exc:  # the one place where CTranslate2 errors become ours
            raise EngineError(f"Whisper failed: {exc}", code="transcription_failed") from exc

    def _tokenizer(self, language: str | None, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self._model.hf_tokenizer, self.multilingual, task=task, language=language)

    def _decode_window(
        self, audio: Samples, options: TranscribeOptions, *, window_s: float | None = None
    ) -> Transcript:
        import ctranslate2

        duration_s = audio.size / SAMPLE_RATE_HZ
        if window_s is None:
            window_s = min(
                MAX_WINDOW_S,
                max(MIN_WINDOW_S, math.ceil((duration_s + SILENCE_MARGIN_S) / WINDOW_BUCKET_S) * WINDOW_BUCKET_S),
            )
        padded = np.zeros(int(window_s * SAMPLE_RATE_HZ), dtype=np.float32)
        padded[: audio.size] = audio
        features = self._model.feature_extractor(padded, padding=0)
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], dtype=np.float32))
        if options.word_timestamps:  # encoded once, for the decode and the alignment after it
            storage = self._model.model.encode(storage, to_cpu=False)

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
            beam_size=self.options.beam(options),
            max_length=max_tokens,
            suppress_blank=True,
            suppress_tokens=[-1],
            return_scores=True,
            return_logits_vocab=options.logprobs,
            return_no_speech_prob=True,
        )[0]
        if result.no_speech_prob > NO_SPEECH_THRESHOLD:
            return Transcript(text="", segments=(), language=language)
        ids = [t for t in result.sequences_ids[0] if t != tokenizer.eot]
        decode = _Decode(
            tokenizer=tokenizer,
            ids=ids,
            logprobs=_chosen_logprobs(result.logits[0], [*ids, tokenizer.eot]) if options.logprobs else None,
            # CTranslate2's score is the sum of the log-probabilities over the length; Whisper's
            # avg_logprob counts the end-of-text token too (faster-whisper's own formula).
            avg_logprob=result.scores[0] * len(ids) / (len(ids) + 1),
            no_speech_prob=result.no_speech_prob,
        )
        if options.timestamps:
            segments = self._segments(decode, duration_s)
        else:
            text_ids = [t for t in ids if t < tokenizer.eot]
            text = tokenizer.decode(text_ids).strip()
            wanted = options.logprobs or options.word_timestamps
            segments = (decode.segment(text, 0.0, duration_s, range(len(ids))),) if text and wanted else ()
        if options.word_timestamps and segments:
            segments = self._with_words(segments, tokenizer, storage, audio.size, duration_s)
        if options.timestamps:
            text = " ".join(s.text for s in segments)
        return Transcript(text=text, segments=segments, language=language)

    @staticmethod
    def _segments(decode: _Decode, duration_s: float) -> tuple[TranscriptSegment, ...]:
        """Split timestamped output; drop segments that start where the real audio has ended."""
        tokenizer = decode.tokenizer
        begin = tokenizer.timestamp_begin
        segments: list[TranscriptSegment] = []
        start_s = 0.0
        positions: list[int] = []  # where this segment's text tokens are in the decode
        for position, token in enumerate(decode.ids):
            if token >= begin:
                time_s = (token - begin) * SECONDS_PER_TIMESTAMP
                if positions:
                    text = tokenizer.decode([decode.ids[i] for i in positions]).strip()
                    if text and start_s < duration_s:
                        segments.append(decode.segment(text, start_s, min(time_s, duration_s), positions))
                    positions = []
                start_s = time_s
            elif token < tokenizer.eot:
                positions.append(position)
        if positions and start_s < duration_s:
            text = tokenizer.decode([decode.ids[i] for i in positions]).strip()
            if text:
                segments.append(decode.segment(text, start_s, duration_s, positions))
        return tuple(segments)

    def _with_words(
        self,
        segments: tuple[TranscriptSegment, ...],
        tokenizer: Any,
        encoded: Any,
        samples: int,
        duration_s: float,
    ) -> tuple[TranscriptSegment, ...]:
        """The segments with their words timed by Whisper's cross-attention alignment (faster-whisper's
        ``find_alignment``, one pass of the decoder over the text), punctuation merged into words."""
        from faster_whisper.transcribe import merge_punctuations

        text_tokens = [t for s in segments for t in s.token_ids]
        num_frames = math.ceil(samples / self._model.feature_extractor.hop_length)
        alignment = self._model.find_alignment(tokenizer, [text_tokens], encoded, num_frames)[0]
        merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        timed: list[TranscriptSegment] = []
        index = 0
        for segment in segments:
            words: list[WordTiming] = []
            taken = 0
            while index < len(alignment) and taken < len(segment.token_ids):
                word = alignment[index]
                taken += len(word["tokens"])
                index += 1
                if word["word"].strip():
                    start_s = min(float(word["start"]), duration_s)
                    end_s = min(max(float(word["end"]), start_s), duration_s)
                    words.append(WordTiming(word["word"].strip(), start_s, end_s, float(word["probability"])))
            timed.append(dataclasses.replace(segment, words=tuple(words)))
        return tuple(timed)

    def _transcribe_long(self, audio: Samples, options: TranscribeOptions) -> Transcript:
        """Audio over one window, through faster-whisper's own loop: words when asked, Whisper's
        segment measures, but no token log-probabilities (its loop does not expose them; the
        runtime never sends this engine audio this long, it decodes long audio in windows)."""
        segments, info = self._model.transcribe(
            audio,
            language=options.language if self.multilingual else "en",
            task=options.task,
            beam_size=self.options.beam(options),
            initial_prompt=options.prompt,
            condition_on_previous_text=False,
            vad_filter=False,
            word_timestamps=options.word_timestamps,
        )
        eot = self._model.hf_tokenizer.token_to_id("<|endoftext|>")
        parts = tuple(
            TranscriptSegment(
                s.text.strip(),
                s.start,
                s.end,
                words=tuple(WordTiming(w.word.strip(), w.start, w.end, w.probability) for w in s.words or ()),
                token_ids=tuple(t for t in s.tokens if t < eot),
                avg_logprob=s.avg_logprob,
                no_speech_prob=s.no_speech_prob,
            )
            for s in segments
            if s.text.strip()
        )
        return Transcript(text=" ".join(p.text for p in parts), segments=parts, language=info.language)


@dataclass(frozen=True)
class _Decode:
    """One window's decoded ids and what the decoder measured, cut into segments on demand."""

    tokenizer: Any
    ids: list[int]
    logprobs: list[float] | None  # of each id, when asked for
    avg_logprob: float
    no_speech_prob: float

    def segment(self, text: str, start_s: float, end_s: float, positions: Iterable[int]) -> TranscriptSegment:
        """The segment of the text tokens at ``positions`` (timestamp tokens excluded)."""
        eot = self.tokenizer.eot
        kept = [i for i in positions if self.ids[i] < eot]
        token_ids = tuple(self.ids[i] for i in kept)
        tokens: tuple[TokenLogprob, ...] = ()
        if self.logprobs is not None:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            pieces = [(i, token_bytes(self.tokenizer, self.ids[i])) for i in kept]
            tokens = tuple(
                TokenLogprob(decoder.decode(data), self.logprobs[i], data, self.ids[i]) for i, data in pieces
            )
        return TranscriptSegment(
            text,
            start_s,
            end_s,
            tokens=tokens,
            token_ids=token_ids,
            avg_logprob=self.avg_logprob,
            no_speech_prob=self.no_speech_prob,
        )


def _chosen_logprobs(steps: Sequence[Any], chosen: Sequence[int]) -> list[float]:
    """The log-probability of each chosen token under the decoder's distribution at its step.

    ``steps`` are CTranslate2's ``logits_vocab``: one vector over the vocabulary per generated
    token (suppressed tokens already at the float minimum), so a log-softmax of each gives what
    greedy decoding chose from.
    """
    if not steps:
        return []
    logits = np.stack([np.asarray(step, dtype=np.float32).reshape(-1) for step in steps[: len(chosen)]])
    peak = logits.max(axis=1, keepdims=True)
    log_total = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
    picked = logits[np.arange(logits.shape[0]), np.asarray(chosen[: logits.shape[0]])]
    return [min(0.0, float(v)) for v in picked - log_total]


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (Whisper's tokenizer): each printable stand-in -> its byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            stand_ins.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, stand_ins, strict=True)}


def token_bytes(tokenizer: Any, token_id: int) -> bytes:
    """The UTF-8 bytes that token ``token_id`` stands for (a piece of a character, possibly)."""
    piece = tokenizer.tokenizer.id_to_token(token_id) or ""
    table = _byte_decoder()
    return bytes(table[c] for c in piece if c in table)


def model_path(options: WhisperOptions) -> Path:
    """Where the model of ``options`` lives on disk (for diagnostics)."""
    return Path(_resolve_model(options.model))


def _loop_period(words: list[str]) -> int | None:
    """How many words the rest of ``words`` repeats from their start (at least ``MIN_REPEATED_WORDS``
    of them again, or all where fewer), the fewest; ``None`` where the rest repeats none so."""
    for period in range(1, len(words)):
        if len(words) - period < min(MIN_REPEATED_WORDS, period):
            return None
        if all(words[i] == words[i - period] for i in range(period, len(words))):
            return period
    return None


def _loop_repaired(text: str, duration_s: float) -> str | None:
    """The words of a looped decode said once, where the loop is them said again from their start and
    they alone are no loop; else ``None``."""
    words = text.split()
    period = _loop_period(words)
    if period is None:
        return None
    once = " ".join(words[:period])
    return None if _looped(once, duration_s) else once


def _looped(text: str, duration_s: float) -> bool:
    """Whether ``text`` reads faster than anyone speaks ``duration_s`` of audio, or is the same words
    twice over faster than people talk (a decode loop)."""
    words = text.split()
    if len(words) < MIN_LOOP_WORDS:
        return False
    seconds = max(duration_s, 0.1)
    if len(words) > MAX_WORDS_PER_S * seconds:
        return True
    period = _loop_period(words)
    return period is not None and len(words) >= 2 * period and len(words) > REPEATED_WORDS_PER_S * seconds
