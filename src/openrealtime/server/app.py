"""The ASGI app: ``/healthz``, the realtime WebSocket (``/v1/realtime`` and ``/realtime``), and the
translation WebSocket (``/v1/realtime/translations``).

Like OpenAI, the server always completes the WebSocket upgrade, then reports a connect-time problem
as one ``error`` event followed by a close: 3000 for authentication, 4000 for the request's shape
(reference 2.4). Engines load once, in the lifespan, and ``/healthz`` answers 200 only after that.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from openrealtime.contracts import ChatModel, NoiseSuppressor, Synthesizer, Translator
from openrealtime.exceptions import EngineError, ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, dump_server_event
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.languages import LanguageSupport
from openrealtime.runtime.scheduler import ModelWorker
from openrealtime.runtime.threads import call_at_priority
from openrealtime.server.auth import authenticate
from openrealtime.server.metrics import Metrics
from openrealtime.server.settings import Settings
from openrealtime.session.ids import Ids
from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS, RealtimeInfo, RealtimeSession
from openrealtime.session.transcription import SessionInfo, TranscriptionSession
from openrealtime.session.translation import TranslationSession

log = logging.getLogger(__name__)

CLOSE_AUTH = 3000
CLOSE_BAD_REQUEST = 4000
WARMUP_AUDIO_S = 1
BLAS_THREADS = 1
ASR_NICE = 5  # Whisper threads yield the cores to the LLM and TTS of answers being spoken (scheduler)


def load_engines(settings: Settings) -> EngineSet:
    """Load the default engines named by ``settings`` (heavy imports happen here)."""
    limit_blas_threads()
    from openrealtime.contracts import TranscribeOptions
    from openrealtime.engines.silero import SileroVad
    from openrealtime.engines.whisper import WhisperOptions, WhisperTranscriber

    options = WhisperOptions(
        model=settings.asr_model,
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        threads=settings.asr_threads,
        workers=settings.asr_workers,
    )

    def load_whisper() -> WhisperTranscriber:
        transcriber = WhisperTranscriber(options)
        # One warm-up decode, so the first user does not pay for lazy initialisation.
        transcriber.transcribe(np.zeros(WARMUP_AUDIO_S * 16_000, dtype=np.float32), TranscribeOptions())
        return transcriber

    # Loaded in a lowered-priority thread: CTranslate2's compute threads, started there, inherit it.
    transcriber = call_at_priority(ASR_NICE, load_whisper)
    return EngineSet(
        asr_worker=ModelWorker("asr", threads=settings.asr_workers, nice=ASR_NICE),
        vad=SileroVad(),
        transcriber=transcriber,
        transcriber_name=settings.asr_model,
        chat=(chat := load_chat_model(settings)),
        synthesizers=load_synthesizers(settings),
        translators=load_translators(chat),
        noise=load_noise_suppressor(),
    )


def limit_blas_threads() -> None:
    """Run numpy's BLAS in the calling thread only, process-wide.

    Its one job here is Whisper's mel filterbank product (0.2 ms a decode), but OpenBLAS's helper
    threads spin after every call: under eight transcription sessions they kept 0.6 of two cores
    busy doing nothing, slowing every decode. The models bring their own thread pools.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=BLAS_THREADS, user_api="blas")


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
            )
        )
    from pathlib import Path

    from openrealtime.engines.llama_chat import LlamaChatModel, LlamaOptions

    path = None if settings.llm == "smollm2" else Path(settings.llm)
    options = LlamaOptions(
        model_path=path,
        n_ctx=settings.llm_context_tokens,
        n_gpu_layers=settings.llm_gpu_layers,
        n_threads=settings.threads,
        parallel=max(1, settings.llm_parallel),
    )
    return _warm_chat(LlamaChatModel(options))


def _warm_chat(model: ChatModel) -> ChatModel:
    """One tiny completion, so the first user does not pay for lazy initialisation (kernels, caches)."""
    import threading

    from openrealtime.contracts import ChatRequest

    for _ in model.chat(ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=1), threading.Event()):
        pass
    return model


def _warm_tts(synthesizer: Synthesizer) -> Synthesizer:
    """One short sentence through the voice, for the same reason."""
    import threading

    for _ in synthesizer.synthesize("Hello.", voice="alloy", stop=threading.Event()):
        pass
    return synthesizer


def load_synthesizers(settings: Settings) -> dict[str, Synthesizer]:
    """piper for English; espeak-ng (in process) for every other language."""
    from pathlib import Path

    from openrealtime.engines.espeak_tts import EspeakSynthesizer
    from openrealtime.engines.piper_tts import PiperOptions, PiperSynthesizer
    from openrealtime.engines.pool import SynthesizerPool

    paths = (Path(settings.tts_voice),) if settings.tts_voice else ()
    voices = [
        _warm_tts(PiperSynthesizer(PiperOptions(model_paths=paths))) for _ in range(max(1, settings.tts_instances))
    ]
    english: Synthesizer = voices[0] if len(voices) == 1 else SynthesizerPool(voices)
    synthesizers: dict[str, Synthesizer] = {
        "en": english,
        "*": EspeakSynthesizer(),
    }
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


class _StarletteTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def receive(self) -> str | bytes | None:
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        await self._ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):
            await self._ws.close(code=code, reason=reason)


async def _refuse(websocket: WebSocket, *, message: str, code: str | None, close_code: int) -> None:
    error = se.Error.of(ProtocolError(message, code=code))
    await websocket.send_text(dump_server_event(error))
    reason = f"invalid_request_error.{code}" if code else "invalid_request_error"
    await websocket.close(code=close_code, reason=reason)


def create_app(
    settings: Settings | None = None,
    *,
    engines: EngineSet | None = None,
    engine_loader: Callable[[Settings], EngineSet] = load_engines,
) -> Starlette:
    """Build the app; pass ``engines`` (e.g. fakes) to skip loading models."""
    settings = settings or Settings.load()
    state: dict[str, Any] = {"engines": engines, "active": 0}
    metrics = Metrics()
    owns_engines = engines is None  # engines passed in (tests, embedding) are the caller's to close

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state["engines"] is None:
            import asyncio

            started = time.perf_counter()
            state["engines"] = await asyncio.to_thread(engine_loader, settings)
            log.info("engines loaded in %.2f s", time.perf_counter() - started)
        yield
        if owns_engines:
            state["engines"].close()

    async def metrics_endpoint(request: Request) -> PlainTextResponse:
        chat = state["engines"].chat if state["engines"] is not None else None
        return PlainTextResponse(metrics.render(getattr(chat, "stats", None)), media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> JSONResponse:
        if state["engines"] is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok", "active_sessions": state["active"]})

    async def realtime(websocket: WebSocket) -> None:
        auth = authenticate(websocket.headers, websocket.scope.get("subprotocols", []), settings.api_key)
        await websocket.accept(subprotocol=auth.subprotocol)
        if not auth.ok:
            await _refuse(websocket, message=auth.message, code=auth.code, close_code=CLOSE_AUTH)
            return
        if websocket.headers.get("openai-beta", "").startswith("realtime"):
            await _refuse(
                websocket,
                message="The beta Realtime API shape is disabled; remove the "
                "'OpenAI-Beta: realtime=v1' header to use the GA interface.",
                code="beta_api_shape_disabled",
                close_code=CLOSE_BAD_REQUEST,
            )
            return
        engines: EngineSet = state["engines"]
        intent = websocket.query_params.get("intent")
        model = websocket.query_params.get("model")
        info = SessionInfo(
            session_id=Ids().new("sess"),
            created_at_s=int(time.time()),
            accepts_model=engines.accepts_transcription_model,
            lifetime_s=settings.session_lifetime_s,
        )
        if intent == "transcription":
            session: Any = TranscriptionSession(info, vad=engines.vad, noise=engines.noise)
            kind = SessionKind.TRANSCRIPTION
        elif intent not in (None, "realtime"):
            await _refuse(
                websocket,
                message=f"Invalid intent '{intent}'. Supported values are: 'realtime' and 'transcription'.",
                code="invalid_intent",
                close_code=CLOSE_BAD_REQUEST,
            )
            return
        elif model is None:
            await _refuse(
                websocket,
                message="You must provide a model parameter, for example "
                "ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime",
                code="missing_model",
                close_code=CLOSE_BAD_REQUEST,
            )
            return
        else:
            # Any model name (gpt-realtime, gpt-realtime-2, ...) maps to the configured engines.
            context = engines.chat.context_tokens if engines.chat is not None else settings.llm_context_tokens
            session = RealtimeSession(
                RealtimeInfo(
                    base=info,
                    model=model,
                    context_tokens=context,
                    instructions=settings.instructions or DEFAULT_INSTRUCTIONS,
                ),
                vad=engines.vad,
                noise=engines.noise,
            )
            kind = SessionKind.REALTIME
        await _serve(websocket, session, kind, engines)

    async def _serve(websocket: WebSocket, session: Any, kind: SessionKind, engines: EngineSet) -> None:
        state["active"] += 1
        metrics.active.add(1, kind=kind.value)
        metrics.sessions.add(1, kind=kind.value)
        if engines.on_stage is None:
            engines.on_stage = lambda stage, seconds: metrics.stage.observe(seconds, stage=stage)
        log.info("session %s (%s) opened", session.info.session_id, kind.value)
        try:
            await Connection(
                session,
                _StarletteTransport(websocket),
                kind,
                run_job=engines.run_job,
                cancel_job=engines.cancel_job,
                lifetime_s=settings.session_lifetime_s,
                on_event=metrics.observer(),
                on_append=metrics.append.observe,
            ).run()
        finally:
            state["active"] -= 1
            metrics.active.add(-1, kind=kind.value)
            log.info("session %s closed", session.info.session_id)

    async def translations(websocket: WebSocket) -> None:
        auth = authenticate(websocket.headers, websocket.scope.get("subprotocols", []), settings.api_key)
        await websocket.accept(subprotocol=auth.subprotocol)
        if not auth.ok:
            await _refuse(websocket, message=auth.message, code=auth.code, close_code=CLOSE_AUTH)
            return
        model = websocket.query_params.get("model")
        if "intent" in websocket.query_params:  # as the SDKs refuse it client-side (reference 2.2)
            await _refuse(
                websocket,
                message="Realtime Translation does not accept an intent query parameter.",
                code="invalid_intent",
                close_code=CLOSE_BAD_REQUEST,
            )
            return
        if not model:
            await _refuse(
                websocket,
                message="You must provide a model parameter, for example "
                "ws://127.0.0.1:8000/v1/realtime/translations?model=gpt-realtime-translate",
                code="missing_model",
                close_code=CLOSE_BAD_REQUEST,
            )
            return
        engines: EngineSet = state["engines"]
        # Any model name (gpt-realtime-translate, ...) maps to the configured engines.
        info = LanguageSupport(engines).info(session_id=Ids().new("sess"), created_at_s=int(time.time()), model=model)
        session = TranslationSession(info, vad=engines.vad, noise=engines.noise)
        await _serve(websocket, session, SessionKind.TRANSLATION, engines)

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
        WebSocketRoute("/v1/realtime", realtime),
        WebSocketRoute("/realtime", realtime),
        WebSocketRoute("/v1/realtime/translations", translations),
        WebSocketRoute("/realtime/translations", translations),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(settings: Settings) -> None:
    """Run the server in the foreground (``openrealtime serve``)."""
    import uvicorn

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting with %s", settings.redacted())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=PING_INTERVAL_S,
        ws_ping_timeout=PING_TIMEOUT_S,
    )


MAX_FRAME_BYTES = 32 * 1024 * 1024  # a 15 MiB append is 20 MiB of base64: let it reach our check
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0
