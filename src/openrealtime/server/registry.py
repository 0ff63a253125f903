"""Settings -> engine set: the one place that names, loads and warms the engines of a server.

Each engine module imports its heavy library itself, so this module imports them inside the loaders:
importing the registry costs nothing, and a server given its engines (tests, embedding) never loads
a model. Every loader warms what it loads with one tiny call, so that the first user does not pay
for lazy initialisation (kernels, caches, ONNX sessions).

It lives in the server package because it reads the server's :class:`Settings` and builds the
runtime's :class:`EngineSet`: the engines themselves depend on neither.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from openrealtime.contracts import (
    ChatModel,
    ChatRequest,
    EndOfTurnModel,
    EndOfTurnTextModel,
    NoiseSuppressor,
    Synthesizer,
    TranscribeOptions,
    Transcriber,
    Translator,
    VadModel,
)
from openrealtime.exceptions import EngineError
from openrealtime.runtime.bulk_asr import BulkAsr
from openrealtime.runtime.engines import DEFAULT_VOICE, EngineSet
from openrealtime.runtime.mcp_client import McpClient, allowed_hosts
from openrealtime.runtime.scheduler import ModelWorker
from openrealtime.runtime.threads import call_at_priority
from openrealtime.server.remote_engines import (
    remote_asr_workers,
    remote_closers,
    remote_synthesizer,
    remote_transcriber,
)
from openrealtime.server.settings import Settings

log = logging.getLogger(__name__)

WARMUP_AUDIO_S = 1
WARMUP_TEXT = "Hello."
BLAS_THREADS = 1
ASR_NICE = 5  # Whisper threads yield the cores to the LLM and TTS of answers being spoken (scheduler)
ENGLISH = "en"
FALLBACK_LANGUAGE = "*"  # the key of the synthesizer that speaks every language without its own


def load_engines(settings: Settings) -> EngineSet:
    """Load the default engines named by ``settings`` (heavy imports happen here)."""
    limit_blas_threads()
    # Loaded in a lowered-priority thread: CTranslate2's compute threads, started there, inherit it.
    transcriber = call_at_priority(ASR_NICE, lambda: load_transcriber(settings))
    engines = EngineSet(
        asr_worker=ModelWorker("asr", threads=remote_asr_workers(settings), nice=ASR_NICE),
        bulk_asr=None if settings.asr_url else BulkAsr(lambda: load_bulk_transcriber(settings)),
        vad=load_vad(),
        end_of_turn=load_end_of_turn(),
        end_of_turn_text=load_end_of_turn_text(settings),
        transcriber=transcriber,
        transcriber_name=settings.asr_model,
        chat=(chat := load_chat_model(settings)),
        synthesizers=load_synthesizers(settings),
        translators=load_translators(chat),
        noise=load_noise_suppressor(),
        mcp=McpClient(timeout_s=settings.mcp_timeout_s, allowed_hosts=allowed_hosts(settings.mcp_hosts)),
    )
    engines.closers += remote_closers(transcriber, *engines.synthesizers.values())
    yield_to = getattr(chat, "yield_to", None)  # the in-process LLM holds later tokens back for first words
    if yield_to is not None:
        yield_to(engines.first_words.waiting)
    return engines


def limit_blas_threads() -> None:
    """Run numpy's BLAS in the calling thread only, process-wide.

    Its one job here is Whisper's mel filterbank product (0.2 ms a decode), but OpenBLAS's helper
    threads spin after every call: under eight transcription sessions they kept 0.6 of two cores
    busy doing nothing, slowing every decode. The models bring their own thread pools.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def load_vad() -> VadModel:
    """Silero VAD, the registry-shipped ONNX model."""
    from openrealtime.engines.silero import SileroVad

    return SileroVad()


def load_end_of_turn() -> EndOfTurnModel | None:
    """Smart Turn v3.2 for ``semantic_vad``, warmed with one decision; ``None`` (and a warning) when
    its file is missing or broken: ``semantic_vad`` then ends turns by its English word rule."""
    from openrealtime.engines.smart_turn import SmartTurn

    try:
        model = SmartTurn()
        model.completion_probability(np.zeros(WARMUP_AUDIO_S * model.sample_rate_hz, dtype=np.float32))
    except EngineError as exc:
        log.warning("semantic_vad: no end-of-turn model (%s); turns end by the English word rule instead", exc.message)
        return None
    return model


def load_end_of_turn_text(settings: Settings) -> EndOfTurnTextModel | None:
    """``semantic_vad``'s text signal: the default LLM in a context of its own, its system prompt
    evaluated once. ``None`` with a remote LLM or another GGUF (its thresholds are SmolLM2's, measured
    under the default instructions) or when it fails to load: turns are then decided without it."""
    if settings.llm_url or settings.llm != "smollm2":
        return None
    from openrealtime.engines.end_token import EndTokenModel, TurnWordsScorer
    from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS

    try:
        scorer = TurnWordsScorer(EndTokenModel(), DEFAULT_INSTRUCTIONS)
        scorer.end_probability(WARMUP_TEXT)
    except EngineError as exc:
        log.warning("semantic_vad: no text signal from the LLM (%s)", exc.message)
        return None
    return scorer


def load_transcriber(settings: Settings) -> Transcriber:
    """faster-whisper with the model, device and threads of ``settings``, warmed with one decode; the
    server at ``asr_url`` instead when it is set (nothing loaded)."""
    if settings.asr_url:
        return remote_transcriber(settings)
    from openrealtime.engines.whisper import WhisperOptions, WhisperTranscriber

    transcriber = WhisperTranscriber(
        WhisperOptions(
            model=settings.asr_model,
            device=settings.asr_device,
            compute_type=settings.asr_compute_type,
            threads=settings.asr_threads,
            workers=settings.asr_workers,
        )
    )
    silence = np.zeros(WARMUP_AUDIO_S * transcriber.sample_rate_hz, dtype=np.float32)
    transcriber.transcribe(silence, TranscribeOptions())
    return transcriber


def load_bulk_transcriber(settings: Settings) -> Transcriber:
    """The bulk recogniser's replica of the model (runtime/bulk_asr.py): one decode at a time, in one
    thread, on the device of ``settings``."""
    from openrealtime.engines.whisper import WhisperOptions, WhisperTranscriber

    options = WhisperOptions(
        model=settings.asr_model,
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        threads=1,
        workers=1,
    )
    return WhisperTranscriber(options)


def load_chat_model(settings: Settings) -> ChatModel:
    """The LLM: an OpenAI-compatible endpoint when ``llm_url`` is set, else llama.cpp in process."""
    if settings.llm_url:
        from openrealtime.engines.openai_chat import OpenAIChatOptions, OpenAICompatibleChatModel

        return OpenAICompatibleChatModel(
            OpenAIChatOptions(
                base_url=settings.llm_url,
                model=settings.llm_model,
                api_key=settings.llm_api_key,
                context_tokens=settings.llm_context_tokens,
                vision=settings.llm_vision,
            )
        )
    from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions

    options = LlamaOptions(
        model_path=None if settings.llm == "smollm2" else Path(settings.llm),
        n_ctx=settings.llm_context_tokens,
        n_gpu_layers=settings.llm_gpu_layers,
        n_threads=settings.threads,
        parallel=max(1, settings.llm_parallel),
    )
    return warm_chat(LlamaChatModel(options))


def warm_chat(model: ChatModel) -> ChatModel:
    """``model`` after one completion of one token."""
    request = ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    for _ in model.chat(request, threading.Event()):
        pass
    return model


def warm_tts(synthesizer: Synthesizer) -> Synthesizer:
    """``synthesizer`` after speaking one short sentence."""
    for _ in synthesizer.synthesize(WARMUP_TEXT, voice=DEFAULT_VOICE, stop=threading.Event()):
        pass
    return synthesizer


def load_synthesizers(settings: Settings) -> dict[str, Synthesizer]:
    """piper for English (a pool of ``tts_instances``) and for each language of ``tts_voices``;
    espeak-ng (in process) for every other language. With ``tts_url``, its server for every language
    but those of ``tts_voices``."""
    from openrealtime.engines.espeak_tts import EspeakSynthesizer
    from openrealtime.engines.piper_tts import PiperOptions, PiperSynthesizer
    from openrealtime.engines.pool import SynthesizerPool

    if settings.tts_url:
        remote = remote_synthesizer(settings)
        voices_by_language: dict[str, Synthesizer] = {ENGLISH: remote, FALLBACK_LANGUAGE: remote}
        for language, path in parse_voice_paths(settings.tts_voices).items():
            voices_by_language[language] = PiperSynthesizer(PiperOptions(model_paths=(Path(path),)))
        return voices_by_language
    paths = (Path(settings.tts_voice),) if settings.tts_voice else ()
    voices = [
        warm_tts(PiperSynthesizer(PiperOptions(model_paths=paths))) for _ in range(max(1, settings.tts_instances))
    ]
    english: Synthesizer = voices[0] if len(voices) == 1 else SynthesizerPool(voices)
    synthesizers: dict[str, Synthesizer] = {ENGLISH: english, FALLBACK_LANGUAGE: EspeakSynthesizer()}
    for language, path in parse_voice_paths(settings.tts_voices).items():
        synthesizers[language] = PiperSynthesizer(PiperOptions(model_paths=(Path(path),)))
    return synthesizers


def parse_voice_paths(spec: str | None) -> dict[str, str]:
    """``"es=/v/es.onnx,de=/v/de.onnx"`` -> ``{"es": "/v/es.onnx", "de": "/v/de.onnx"}``."""
    pairs = (item.split("=", 1) for item in (spec or "").split(",") if "=" in item)
    return {language.strip().lower(): path.strip() for language, path in pairs}


def load_translators(chat: ChatModel | None) -> list[Translator]:
    """Apertium for the pairs its installed packages cover, then an LLM translator for the rest."""
    from openrealtime.engines.apertium import ApertiumTranslator
    from openrealtime.engines.llm_translator import LlmTranslator

    translators: list[Translator] = [ApertiumTranslator()]
    if chat is not None:
        translators.append(LlmTranslator(chat))
    return translators


def load_noise_suppressor() -> NoiseSuppressor | None:
    """RNNoise for ``noise_reduction``; without it the setting is accepted and does nothing."""
    from openrealtime.engines.noise import RnnoiseSuppressor

    try:
        return RnnoiseSuppressor()
    except EngineError as exc:
        log.warning("noise reduction unavailable: %s", exc.message)
        return None
