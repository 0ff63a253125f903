"""The ASGI app: ``/healthz``, the realtime WebSocket (``/v1/realtime`` and ``/realtime``), the
translation WebSocket (``/v1/realtime/translations``), and the minting of client secrets
(``POST /v1/realtime/client_secrets``, ``POST /v1/realtime/translations/client_secrets``,
:mod:`~openrealtime.server.minting`).

Like OpenAI, the server always completes the WebSocket upgrade, then reports a connect-time problem
as one ``error`` event followed by a close: 3000 for authentication, 4000 for the request's shape
(reference 2.4), 1013 when every place for that kind of session is taken
(:mod:`~openrealtime.server.admission`). A page from a foreign origin gets no upgrade at all
(:mod:`~openrealtime.server.origins`). Engines load once, in the lifespan (see
:mod:`~openrealtime.server.registry`), which also wires their stage timings to ``/metrics``;
``/healthz`` is a readiness answer: 200 only after that, and 503 with a reason while every session
kind is full or the event loop lags (:mod:`~openrealtime.server.readiness`). Which session a connect opens is decided in
:mod:`~openrealtime.server.sessions`.

WebRTC calls (``POST /v1/realtime/calls``, :mod:`~openrealtime.server.calls`) are sessions too: the
same keys open them and the same admission counts them. ``/v1/realtime?call_id=rtc_...`` is a call's
sideband (:mod:`~openrealtime.runtime.fanout`): it opens no session but attaches to the call's, with
the server's key only (an ``ek_`` gets an ``error`` and 3000, an unknown call an ``error`` and 4000).

A client secret (``ek_...``, :mod:`~openrealtime.server.secrets`) opens sessions wherever the
server's key does, and nothing else: minting and ``/metrics`` take the server's key only. Pages of
the origins the Origin check lets in may call the HTTP routes cross-origin (CORS, ``Location``
exposed); the check runs first, so a refused origin gets its 403 and no CORS headers.

Unless ``web_app`` is off, ``/`` serves the browser app (:mod:`~openrealtime.server.web_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import SessionKind, dump_server_event
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.scheduler import FairExecutor, WorkerStats
from openrealtime.server.admission import CLOSE_TRY_AGAIN_LATER, REFUSAL_TYPE, Admission
from openrealtime.server.audio_api import AudioApi
from openrealtime.server.auth import SUBPROTOCOL_REALTIME, UNAVAILABLE, AuthResult, AuthThrottle, authenticate
from openrealtime.server.calls import CallsApi
from openrealtime.server.drain import Activity, Drain
from openrealtime.server.metrics import Metrics
from openrealtime.server.minting import (
    HTTP_PAYLOAD_TOO_LARGE,
    MAX_BODY_BYTES,
    BodyTooLarge,
    error_body,
    mint,
    read_body,
)
from openrealtime.server.origins import OriginGuard, OriginPolicy
from openrealtime.server.readiness import LoopLag, Probes, Readiness, load_report, readiness
from openrealtime.server.registry import load_engines
from openrealtime.server.resume import LiveSessions, Resumed, SharedOwnership, resume, resume_param
from openrealtime.server.secrets import SecretStore, open_secret_store
from openrealtime.server.sessions import (
    CLOSE_AUTH,
    CLOSE_BAD_REQUEST,
    Opened,
    Primed,
    Refusal,
    open_realtime,
    open_translation,
)
from openrealtime.server.settings import Settings
from openrealtime.server.web_app import WebApp
from openrealtime.state.recorder import Recorder
from openrealtime.state.store import StateStore, check_store, open_store

log = logging.getLogger(__name__)

CLOSE_THROTTLED = 1008  # policy violation: too many failed keys from this address
THROTTLED = "throttled"
THROTTLED_MESSAGE = "Too many failed authentications from this address; try again in a minute."
HTTP_UNAUTHORIZED = 401
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVICE_UNAVAILABLE = 503
SERVER_KEY_ONLY = "Client secrets (ek_) open sessions only; this endpoint needs the server's API key."
SIDEBAND_KEY_ONLY = "A sideband (call_id) needs the server's API key; client secrets (ek_) cannot attach to a call."
# CORS for the pages the Origin check lets in: what the SDKs send (Authorization, JSON, their own
# headers: allowed as asked) and Location, which a cross-origin page otherwise reads as null.
CORS_METHODS = ("GET", "POST", "DELETE")
CORS_EXPOSED = ("Location",)
CORS_MAX_AGE_S = 600


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


async def _refuse(websocket: WebSocket, refusal: Refusal) -> None:
    error = se.Error.of(
        ProtocolError(refusal.message, code=refusal.code, param=refusal.param, error_type=refusal.error_type)
    )
    await websocket.send_text(dump_server_event(error))
    reason = f"{refusal.error_type}.{refusal.code}" if refusal.code else refusal.error_type
    await websocket.close(code=refusal.close_code, reason=reason)


def _address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client is not None else "unknown"


def _openai_error(status: int, message: str, code: str, error_type: str = "invalid_request_error") -> JSONResponse:
    error = {"type": error_type, "code": code, "message": message, "param": None}
    return JSONResponse({"error": error}, status_code=status)


async def _closed(
    session_id: str, connection: Connection, recorder: Recorder, live: LiveSessions, drain: Drain
) -> None:
    """A session's connection ended: its state's last write, then a resume or a drain may go on."""
    try:
        await recorder.close()
    finally:
        await live.release(session_id, connection)
        drain.release(connection)
        log.info("session %s closed", session_id)


class _Server:
    """What the routes share: settings, the engines once loaded, metrics and the open sessions."""

    def __init__(
        self,
        settings: Settings,
        engines: EngineSet | None,
        secrets: SecretStore | None = None,
        state: StateStore | None = None,
    ) -> None:
        self.settings = settings
        # Resumable sessions (server/resume.py): their state, and which this process holds now.
        # ``is None``, not ``or``: an empty memory store is falsy (it has a length), and a store shared
        # by two doors in one process (tests) starts empty.
        self.state = state if state is not None else open_store(settings.state_url)
        shared = self.state if isinstance(self.state, SharedOwnership) else None
        self.live = LiveSessions(shared, settings.resume_grace_s)
        self.engines = engines
        self.metrics = Metrics()
        # Client secrets: in this process, or with --state-url redis:// shared by every front door.
        self.secrets = secrets or open_secret_store(settings.state_url, settings.max_client_secrets)
        self.throttle = AuthThrottle(settings.max_auth_failures_per_minute)
        self.admission = Admission(
            {
                SessionKind.TRANSCRIPTION: settings.max_transcription_sessions,
                SessionKind.REALTIME: settings.max_realtime_sessions,
                SessionKind.TRANSLATION: settings.max_translation_sessions,
            }
        )
        self.loop_lag = LoopLag()
        # WebRTC calls (server/calls.py): sessions too, under the same admission, keys and metrics.
        self.calls = CallsApi(
            settings,
            self._loaded,
            lambda request: self._authenticate(request, []),
            self._server_key_refusal,
            self.admission,
            self.metrics,
        )
        # Graceful drain on SIGTERM (server/drain.py, server/shutdown.py).
        self.drain = Drain(self.admission, settings.drain_grace_s, self.calls)

    async def _accept(self, websocket: WebSocket) -> AuthResult:
        """Complete the upgrade (always, as OpenAI does), then refuse a client whose key is wrong."""
        auth = await self._authenticate(websocket, websocket.scope.get("subprotocols", []))
        await websocket.accept(subprotocol=auth.subprotocol)
        if auth.reason == THROTTLED:
            await _refuse(websocket, Refusal(auth.message, auth.code, CLOSE_THROTTLED))
        elif auth.reason == UNAVAILABLE:
            await _refuse(websocket, Refusal(auth.message, auth.code, CLOSE_TRY_AGAIN_LATER, error_type="server_error"))
        elif not auth.ok:
            await _refuse(websocket, Refusal(auth.message, auth.code, CLOSE_AUTH))
        return auth

    async def _authenticate(self, connection: HTTPConnection, subprotocols: list[str]) -> AuthResult:
        """Check the key of a connect or request: throttled first, then failures logged and counted."""
        address, now = _address(connection), time.monotonic()
        if self.throttle.blocked(address, now):
            self.metrics.refusals.add(reason="auth_throttled", request=connection.scope["type"])
            subprotocol = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
            return AuthResult(
                ok=False,
                message=THROTTLED_MESSAGE,
                code="rate_limit_exceeded",
                subprotocol=subprotocol,
                reason=THROTTLED,
            )
        auth = await authenticate(connection.headers, subprotocols, self.settings.api_key, self.secrets)
        if auth.reason == UNAVAILABLE:  # the shared secret store did not answer: no guess to count
            log.warning("client secret not checked on %s: %s", connection.url.path, auth.message)
        elif not auth.ok:
            self.throttle.failed(address, now)
            self.metrics.auth_failures.add(reason=auth.reason)
            log.warning("authentication failed from %s on %s: %s key", address, connection.url.path, auth.reason)
            if self.throttle.blocked(address, now):
                log.warning("throttling %s for up to a minute after repeated failed authentications", address)
        return auth

    async def _http_key(self, request: Request) -> AuthResult | None:
        """For HTTP routes: ``None`` when no key is set, else the result of checking the Bearer key."""
        if self.settings.api_key is None:
            return None
        return await self._authenticate(request, [])

    async def _server_key_refusal(self, request: Request) -> Response | None:
        """For routes only the server's key opens (minting, ``/metrics``): ``None`` to go on, else the
        refusal. With no server key set they are open, but a client secret is refused even then: a
        stale one fails as any wrong key, and a live one can never do what only the key may."""
        auth = await self._authenticate(request, [])
        if auth.reason == THROTTLED:
            return _openai_error(HTTP_TOO_MANY_REQUESTS, auth.message, "rate_limit_exceeded")
        if auth.reason == UNAVAILABLE:
            return _openai_error(HTTP_SERVICE_UNAVAILABLE, auth.message, auth.code or UNAVAILABLE, "server_error")
        if not auth.ok:
            return _openai_error(HTTP_UNAUTHORIZED, auth.message, auth.code or "missing_api_key")
        if auth.secret is not None:
            # Not a guess (the secret is live), so not throttled; counted apart.
            self.metrics.auth_failures.add(reason="client_secret")
            log.warning("client secret refused from %s on %s: server key only", _address(request), request.url.path)
            return _openai_error(HTTP_UNAUTHORIZED, SERVER_KEY_ONLY, "invalid_api_key")
        return None

    async def client_secrets(self, request: Request) -> Response:
        """``POST /v1/realtime/client_secrets``: a realtime or transcription secret."""
        return await self._mint(request, SessionKind.REALTIME)

    async def translation_client_secrets(self, request: Request) -> Response:
        """``POST /v1/realtime/translations/client_secrets``: a translation secret."""
        return await self._mint(request, SessionKind.TRANSLATION)

    async def _mint(self, request: Request, route: SessionKind) -> Response:
        refusal = await self._server_key_refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = await read_body(request.stream(), request.headers.get("content-length"))
        except BodyTooLarge:
            message = f"The request body is larger than this server's limit of {MAX_BODY_BYTES} bytes."
            return JSONResponse(error_body(message, "request_too_large"), status_code=HTTP_PAYLOAD_TOO_LARGE)
        answer = await mint(body, route, store=self.secrets, settings=self.settings, engines=self._loaded())
        if answer.status == 200:
            kind = answer.body["session"].get("type", route.value)
            self.metrics.client_secrets.add(kind=kind)
            log.info("client secret minted for %s sessions, expires at %d", kind, answer.body["expires_at"])
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    def observe_stages(self, engines: EngineSet) -> None:
        """Send the engines' stage timings to ``/metrics``, unless their owner observes them already."""
        if engines.on_stage is None:
            engines.on_stage = self.metrics.observe_stage

    async def metrics_endpoint(self, request: Request) -> Response:
        refusal = await self._server_key_refusal(request)
        if refusal is not None:
            return refusal
        chat = self.engines.chat if self.engines is not None else None
        lag_s = max(self.loop_lag.lag_s, self.loop_lag.overdue_s())
        text = self.metrics.render(
            getattr(chat, "stats", None),
            loop_lag_s=lag_s,
            ready=self.readiness().ready,
            live_client_secrets=await self.secrets.live(),
            workers=self._worker_stats(),
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def _worker_stats(self) -> dict[str, WorkerStats]:
        """The engine workers' queues and shares: the ASR's, and the streaming calls' (LLM, TTS, MT)."""
        if self.engines is None:
            return {}
        workers = {"asr": self.engines.asr_worker.stats()}
        if self.engines.bulk_asr is not None:
            workers["asr_bulk"] = self.engines.bulk_asr.worker.stats()
        if isinstance(self.engines.stream_pool, FairExecutor):
            workers["streams"] = self.engines.stream_pool.stats()
        return workers

    def readiness(self) -> Readiness:
        """Whether a new session would be served now (:mod:`~openrealtime.server.readiness`)."""
        return readiness(
            loaded=self.engines is not None,
            all_full=self.admission.all_full(),
            lagging=self.loop_lag.is_lagging(),
            draining=self.admission.draining,
        )

    async def may_see_load(self, request: Request) -> bool:
        """Counts and load are open to probes only without a key; with one, to its holder. A wrong key
        sent here counts as a failure too, or the probes would be an unthrottled oracle."""
        if self.settings.api_key is None:
            return True
        auth = await self._http_key(request) if "authorization" in request.headers else None
        return auth is not None and auth.ok and auth.secret is None

    def load(self) -> dict[str, object]:
        """What ``/readyz`` reports (:func:`~openrealtime.server.readiness.load_report`)."""
        lag_s = max(self.loop_lag.lag_s, self.loop_lag.overdue_s())
        return load_report(self.admission, calls=self.calls.live, workers=self._worker_stats(), lag_s=lag_s)

    async def realtime(self, websocket: WebSocket) -> None:
        auth = await self._accept(websocket)
        call_id = websocket.query_params.get("call_id")
        if auth.ok and call_id is not None:
            await self._sideband(websocket, auth, call_id)
        elif auth.ok:
            engines = self._loaded()
            query, headers = websocket.query_params, websocket.headers
            session_id = resume_param(query)
            if session_id is not None:
                kinds = (SessionKind.REALTIME, SessionKind.TRANSCRIPTION)
                await self._serve(websocket, await self._resume(session_id, kinds, auth), engines)
                return
            opening = open_realtime(query, headers, self.settings, engines, secret=auth.secret)
            await self._serve(websocket, opening, engines)

    async def _resume(self, session_id: str, kinds: tuple[SessionKind, ...], auth: AuthResult) -> Resumed | Refusal:
        if self.admission.draining:  # before any takeover or load: a door on its way out takes nothing
            refused = self.admission.refusal(kinds[0])
            self.metrics.refusals.add(reason=refused.reason, request=kinds[0].value)
            return Refusal(refused.message, refused.code, CLOSE_TRY_AGAIN_LATER, REFUSAL_TYPE)
        resumed = await resume(
            session_id,
            kinds,
            store=self.state,
            live=self.live,
            settings=self.settings,
            engines=self._loaded(),
            secret=auth.secret,
        )
        self.metrics.resumes.add(outcome="resumed" if isinstance(resumed, Resumed) else "refused")
        return resumed

    async def _sideband(self, websocket: WebSocket, auth: AuthResult, call_id: str) -> None:
        """``/v1/realtime?call_id=rtc_...``: attach to the live call (reference 1.4), server key only."""
        if auth.secret is not None:
            self.metrics.auth_failures.add(reason="client_secret")
            log.warning("client secret refused from %s on a sideband: server key only", _address(websocket))
            await _refuse(websocket, Refusal(SIDEBAND_KEY_ONLY, "invalid_api_key", CLOSE_AUTH))
            return
        if not await self.calls.attach(call_id, _StarletteTransport(websocket), via=websocket):
            message = f"Call '{call_id}' not found: it has ended, or never existed."
            await _refuse(websocket, Refusal(message, "call_not_found", CLOSE_BAD_REQUEST, param="call_id"))

    async def translations(self, websocket: WebSocket) -> None:
        auth = await self._accept(websocket)
        session_id = resume_param(websocket.query_params)
        if auth.ok and session_id is not None:
            resumed = await self._resume(session_id, (SessionKind.TRANSLATION,), auth)
            await self._serve(websocket, resumed, self._loaded())
        elif auth.ok:
            engines = self._loaded()
            lifetime_s = self.settings.session_lifetime_s
            await self._serve(
                websocket,
                open_translation(websocket.query_params, engines, lifetime_s=lifetime_s, secret=auth.secret),
                engines,
            )

    def _loaded(self) -> EngineSet:
        # Starlette answers no route before the lifespan's start-up has finished.
        assert self.engines is not None, "a connection before the engines were loaded"
        return self.engines

    async def _serve(self, websocket: WebSocket, opening: Opened | Resumed | Refusal, engines: EngineSet) -> None:
        if isinstance(opening, Refusal):
            await _refuse(websocket, opening)
            return
        restored = opening.state if isinstance(opening, Resumed) else None
        if isinstance(opening, Resumed):
            opening = opening.opened
        session, kind = opening.session, opening.kind
        if not self.admission.admit(kind):
            refused = self.admission.refusal(kind)
            self.metrics.refusals.add(reason=refused.reason, request=kind.value)
            await _refuse(websocket, Refusal(refused.message, refused.code, CLOSE_TRY_AGAIN_LATER, REFUSAL_TYPE))
            return
        self.metrics.active.add(1, kind=kind.value)
        self.metrics.sessions.add(1, kind=kind.value)
        session_id = session.info.session_id
        log.info("session %s (%s) opened", session_id, kind.value)
        inner = session.inner if isinstance(session, Primed) else session
        saved_audio = set(restored.audio) if restored is not None else None
        recorder = Recorder(inner, kind.value, self.state, self.settings.resume_grace_s, saved_audio=saved_audio)
        observe = self.metrics.observer()
        activity = Activity()  # whether it is mid-turn, for the drain

        def on_event(event: se.ServerEvent) -> None:
            observe(event)
            recorder.observe(event)
            activity.observe(event)

        connection = Connection(
            session,
            _StarletteTransport(websocket),
            kind,
            run_job=engines.run_job,
            cancel_job=engines.cancel_job,
            lifetime_s=self.settings.session_lifetime_s,
            speech_lead_s=self.settings.speech_lead_s,
            idle_timeout_s=self.settings.idle_timeout_s or None,
            on_event=on_event,
            on_append=self.metrics.append.observe,
        )
        await self.live.hold(session_id, connection)
        self.drain.hold(connection, session_id, activity)
        recorder.start()
        try:
            await connection.run()
        finally:
            # The place frees at once, before any await: a handler cancelled while it closes (a
            # shutdown; Starlette's test client the moment its socket closes) is cancelled again at
            # each await of an anyio scope, and a place skipped here would be taken for good.
            self.admission.release(kind)
            self.metrics.active.add(-1, kind=kind.value)
            # The last write, which a resume of this session waits for, and the hand-off after it run
            # to their end even so (a task of their own).
            await asyncio.shield(_closed(session_id, connection, recorder, self.live, self.drain))


def create_app(
    settings: Settings | None = None,
    *,
    engines: EngineSet | None = None,
    engine_loader: Callable[[Settings], EngineSet] = load_engines,
    secrets: SecretStore | None = None,
    state: StateStore | None = None,
) -> Starlette:
    """Build the app; pass ``engines`` (e.g. fakes) to skip loading models, ``secrets`` for another
    client-secret store (a shared one, or one on a test clock), ``state`` for another session state
    store (else the one ``settings.state_url`` names)."""
    server = _Server(settings or Settings.load(), engines, secrets, state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if server.engines is None:
            started = time.perf_counter()
            server.engines = await asyncio.to_thread(engine_loader, server.settings)
            log.info("engines loaded in %.2f s", time.perf_counter() - started)
            # What is loaded now (modules, models, tokenizers) lives as long as the process: out of
            # the cyclic collector's sight, its full collections scan only what sessions made since.
            # Before, one took 80-100 ms on the loaded models alone, the event loop stopped (issue 10).
            gc.collect()
            gc.freeze()
        server.observe_stages(server.engines)
        await check_store(server.state)  # a --state-url that does not answer stops the start-up
        server.live.start()
        server.loop_lag.start()
        try:
            yield
        finally:
            await server.calls.close()
            await server.live.stop()
            await server.state.close()
            await server.secrets.close()
            server.loop_lag.stop()
            if engines is None:  # engines passed in (tests, embedding) are the caller's to close
                server.engines.close()

    probes = Probes(
        server.readiness,
        server.admission,
        server.load,
        server.may_see_load,
        lambda reason: server.metrics.unready.add(reason=reason),
    )
    routes = [
        *probes.routes(),  # /healthz, /readyz, /livez (server/readiness.py)
        Route("/metrics", server.metrics_endpoint),
        WebSocketRoute("/v1/realtime", server.realtime),
        WebSocketRoute("/realtime", server.realtime),
        WebSocketRoute("/v1/realtime/translations", server.translations),
        WebSocketRoute("/realtime/translations", server.translations),
        Route("/v1/realtime/client_secrets", server.client_secrets, methods=["POST"]),
        Route("/realtime/client_secrets", server.client_secrets, methods=["POST"]),
        Route("/v1/realtime/translations/client_secrets", server.translation_client_secrets, methods=["POST"]),
        Route("/realtime/translations/client_secrets", server.translation_client_secrets, methods=["POST"]),
    ]
    routes += server.calls.routes()  # WebRTC calls: POST /v1/realtime/calls, .../{id}/hangup
    # OpenAI's audio REST endpoints and /v1/models, on the same engines (server/audio_api.py).
    routes += AudioApi(server.settings, server._loaded, server._server_key_refusal, server.metrics).routes()
    if server.settings.web_app:  # the browser app at / (server/web_app.py)
        routes += WebApp(server.settings, server._loaded).routes()
    guard = Middleware(
        OriginGuard,
        policy=OriginPolicy.parse(server.settings.allowed_origins),
        on_refused=lambda kind: server.metrics.refusals.add(reason="origin", request=kind),
    )
    # Inside the guard: only origins it lets in ever get CORS headers, so any origin may be echoed here.
    cors = Middleware(
        CORSMiddleware,
        allow_origin_regex=".*",
        allow_methods=CORS_METHODS,
        allow_headers=["*"],
        expose_headers=CORS_EXPOSED,
        max_age=CORS_MAX_AGE_S,
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[guard, cors])
    app.state.drain = server.drain  # what SIGTERM runs (server/shutdown.py)
    return app


def serve(settings: Settings) -> None:
    """Run the server in the foreground (``openrealtime serve``)."""
    from openrealtime.server.listener import uvicorn_config
    from openrealtime.server.shutdown import DrainingServer

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting with %s", settings.redacted())
    if settings.web_app:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if settings.ssl_certfile else "http"
        log.info("browser app: open %s://%s:%d/ (off with --no-web-app)", scheme, host, settings.port)
    app = create_app(settings)
    DrainingServer(uvicorn_config(app, settings, log_level=settings.log_level), app.state.drain).run()
