"""OpenAI's WebRTC call routes: ``POST /v1/realtime/calls`` (an SDP offer in, the answer out; and
``POST /v1/realtime/translations/calls`` for a translation session) and
``POST /v1/realtime/calls/{call_id}/hangup`` (reference 1.2, issue 11).

The offer comes in the three shapes OpenAI's clients post:

- ``application/sdp``: the offer alone (browsers, the agents SDK, with an ``ek_`` key);
- ``multipart/form-data`` with ``sdp`` and ``session`` (openai-node's ``calls.create``; its parts are
  Blobs, so they may come as files);
- ``application/json`` ``{"sdp", "session"}`` (openai-python's ``calls.create``).

A call is answered ``201`` with the SDP answer and ``Location: /v1/realtime/calls/rtc_...`` (the SDKs
take the call id from it); every failure is one of OpenAI's JSON error bodies (``error.message`` is
what the SDKs show): 400 for a bad offer or session config, 401 for a key, 404 for an unknown call,
413, 415 for another content type, 429 when throttled, 503 when every place for that kind of session
is taken (a call takes one, as a WebSocket session does, until it ends) or every UDP port of
``webrtc_udp_ports`` is, and 501 when aiortc is not
installed. The server's key or a live client secret opens a call (the secret's config first, then the
request's ``session``: :func:`~openrealtime.server.sessions.open_call`); only the server's key hangs
one up, or attaches a sideband to it (:meth:`CallsApi.attach`, ``GET /v1/realtime?call_id=``).

With ``--state-url redis://``, front doors behind one load balancer share their calls' whereabouts:
the door that answers an offer records itself in the call directory
(:mod:`~openrealtime.state.call_directory`), and a hang-up or sideband that lands on another door is
forwarded to it (:mod:`~openrealtime.server.forwarding`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openrealtime.exceptions import ProtocolError
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.ports import Transport
from openrealtime.server.admission import Admission
from openrealtime.server.auth import UNAVAILABLE, AuthResult
from openrealtime.server.forwarding import door_url, forward_hangup, forwarded, relay_sideband
from openrealtime.server.metrics import Metrics
from openrealtime.server.minting import BodyTooLarge, error_body, read_body
from openrealtime.server.multipart import FORM_DATA, parse_form
from openrealtime.server.secrets import ClientSecret
from openrealtime.server.sessions import Opened, Refusal, open_call, open_translation_call
from openrealtime.server.settings import Settings
from openrealtime.state.call_directory import CallDirectory, open_call_directory

if TYPE_CHECKING:
    from openrealtime.webrtc.calls import CallRegistry

log = logging.getLogger(__name__)

CALLS_PATH = "/v1/realtime/calls"
MAX_CALL_BODY_BYTES = 4 * 1024 * 1024  # an offer is a few kB; a session config with tools can be large
HTTP_CREATED = 201
HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_NOT_FOUND = 404
HTTP_PAYLOAD_TOO_LARGE = 413
HTTP_UNSUPPORTED_MEDIA_TYPE = 415
HTTP_TOO_MANY_REQUESTS = 429
HTTP_INTERNAL_ERROR = 500
HTTP_NOT_IMPLEMENTED = 501
HTTP_SERVICE_UNAVAILABLE = 503
SDP = "application/sdp"
THROTTLED = "throttled"
NO_WEBRTC = (
    "WebRTC calls need aiortc, which is not installed on this server: pip install 'openrealtime[webrtc]'. "
    "WebSocket sessions (/v1/realtime) work without it."
)


class Opener(Protocol):
    """How a route makes its call's session (:func:`~openrealtime.server.sessions.open_call`)."""

    def __call__(
        self,
        session_json: str | None,
        settings: Settings,
        engines: EngineSet,
        *,
        model: str | None = None,
        secret: ClientSecret | None = None,
    ) -> Opened | Refusal: ...


def parse_ice_servers(ice_servers_json: str | None) -> list[dict[str, Any]]:
    """The ``ice_servers`` setting read (``[]`` if unset), when the server starts, not at its first call.

    Raises:
        ValueError: The JSON is not a list of ``{"urls", "username"?, "credential"?}`` objects.
    """
    raw: Any = json.loads(ice_servers_json) if ice_servers_json else []
    if not isinstance(raw, list) or not all(isinstance(s, dict) and "urls" in s for s in raw):
        raise ValueError('ice_servers must be a JSON list of {"urls": ..., "username"?, "credential"?} objects')
    return raw


def parse_udp_ports(ports: str | None) -> tuple[int, int] | None:
    """The ``webrtc_udp_ports`` setting read (``"40000-40100"``, or one port; ``None`` if unset), when
    the server starts.

    Raises:
        ValueError: It is not ``FIRST-LAST`` with 1 <= FIRST <= LAST <= 65535.
    """
    if not ports or not ports.strip():
        return None
    first, dash, last = ports.strip().partition("-")
    try:
        low, high = int(first), int(last if dash else first)
    except ValueError:
        low = high = 0
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"webrtc_udp_ports must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535, not {ports!r}")
    return low, high


def _error(status: int, message: str, code: str | None, param: str | None = None, error_type: str = "") -> Response:
    kind = error_type or ("server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse(error_body(message, code, param, kind), status_code=status)


class _BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class CallsApi:
    """The call routes over one server's settings, engines, keys, admission and metrics."""

    def __init__(
        self,
        settings: Settings,
        engines: Callable[[], EngineSet],
        authenticate: Callable[[Request], Awaitable[AuthResult]],
        server_key_refusal: Callable[[Request], Awaitable[Response | None]],
        admission: Admission,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._engines = engines
        self._authenticate = authenticate
        self._server_key_refusal = server_key_refusal
        self._admission = admission
        self._metrics = metrics
        self._ice_servers = parse_ice_servers(settings.ice_servers)
        self._udp_ports = parse_udp_ports(settings.webrtc_udp_ports)
        self._registry: CallRegistry | None = None
        # Which door holds each call, shared with the other doors on the same Redis (else None).
        self._directory: CallDirectory | None = open_call_directory(settings.state_url)

    def routes(self) -> list[Route]:
        routes = []
        for prefix in ("/v1/realtime/translations/calls", "/realtime/translations/calls"):
            routes.append(Route(prefix, self.create_translation, methods=["POST"]))
        for prefix in ("/v1/realtime/calls", "/realtime/calls"):
            routes += [
                Route(prefix, self.create, methods=["POST"]),
                Route(prefix + "/{call_id}/hangup", self.hangup, methods=["POST"]),
                Route(prefix + "/{call_id}", self.hangup, methods=["DELETE"]),  # as Hugging Face's server
            ]
        return routes

    @property
    def live(self) -> int:
        """Calls in progress."""
        return len(self._registry) if self._registry is not None else 0

    async def close(self) -> None:
        """End every call (the server is shutting down)."""
        if self._registry is not None:
            await self._registry.close_all()
        if self._directory is not None:
            await self._directory.close()

    def _calls(self) -> CallRegistry | None:
        """The registry, made on the first call (aiortc is imported only then); ``None`` without aiortc."""
        if self._registry is None:
            from openrealtime import webrtc

            if not webrtc.available():
                return None
            from openrealtime.webrtc.calls import CONNECT_TIMEOUT_S, CallRegistry
            from openrealtime.webrtc.peer import default_hosts, ice_configuration, use_host_addresses
            from openrealtime.webrtc.ports import UdpPorts

            settings = self._settings
            use_host_addresses(default_hosts(settings.host, settings.webrtc_hosts))
            self._registry = CallRegistry(
                ice_configuration(self._ice_servers),
                connect_timeout_s=settings.call_connect_timeout_s or CONNECT_TIMEOUT_S,
                udp_ports=UdpPorts(*self._udp_ports) if self._udp_ports else None,
            )
        return self._registry

    async def create(self, request: Request) -> Response:
        """``POST /v1/realtime/calls``: a new call, answered with its SDP and ``Location``."""
        return await self._create(request, open_call)

    async def create_translation(self, request: Request) -> Response:
        """``POST /v1/realtime/translations/calls``: a translation call (the translated speech played
        on the call's track, the transcripts on its data channel)."""
        return await self._create(request, open_translation_call)

    async def _create(self, request: Request, opener: Opener) -> Response:
        auth = await self._authenticate(request)
        if auth.reason == THROTTLED:
            return _error(HTTP_TOO_MANY_REQUESTS, auth.message, "rate_limit_exceeded")
        if auth.reason == UNAVAILABLE:
            return _error(HTTP_SERVICE_UNAVAILABLE, auth.message, auth.code)
        if not auth.ok:
            return _error(HTTP_UNAUTHORIZED, auth.message, auth.code or "missing_api_key")
        registry = self._calls()
        if registry is None:
            return _error(HTTP_NOT_IMPLEMENTED, NO_WEBRTC, "webrtc_unavailable")
        try:
            offer, session_json = await self._offer(request)
        except _BadRequest as bad:
            return bad.response
        opening = opener(
            session_json,
            self._settings,
            self._engines(),
            model=request.query_params.get("model"),
            secret=auth.secret,
        )
        if isinstance(opening, Refusal):
            return _error(HTTP_BAD_REQUEST, opening.message, opening.code, opening.param, opening.error_type)
        here = door_url(self._settings, request.scope.get("server"))
        return await self._start(registry, offer, opening, here)

    async def _start(self, registry: CallRegistry, offer: str, opening: Opened, here: str) -> Response:
        from openrealtime.webrtc.peer import BadOffer
        from openrealtime.webrtc.ports import PortRangeExhausted

        kind, session = opening.kind, opening.session
        if not self._admission.admit(kind):  # full, or draining (server/admission.py)
            refused = self._admission.refusal(kind)
            self._metrics.refusals.add(reason=refused.reason, request=kind.value)
            return _error(HTTP_SERVICE_UNAVAILABLE, refused.message, refused.code)
        engines, settings = self._engines(), self._settings

        def start(transport: Any, media: Any) -> Connection:
            return Connection(
                session,
                transport,
                kind,
                run_job=engines.run_job,
                cancel_job=engines.cancel_job,
                lifetime_s=settings.session_lifetime_s,
                speech_lead_s=settings.speech_lead_s,
                idle_timeout_s=settings.idle_timeout_s or None,
                on_event=self._metrics.observer(),
                on_append=self._metrics.append.observe,
                media=media,
            )

        def ended() -> None:
            self._admission.release(kind)
            self._metrics.active.add(-1, kind=kind.value)
            log.info("call of session %s ended", session.info.session_id)

        try:
            call_id, answer = await registry.open(offer, start, ended)
        except BadOffer as exc:
            self._admission.release(kind)
            return _error(HTTP_BAD_REQUEST, str(exc), "invalid_offer", "sdp")
        except PortRangeExhausted as exc:
            self._admission.release(kind)
            self._metrics.refusals.add(reason="udp_ports", request=kind.value)
            log.warning("call refused: %s", exc)
            return _error(HTTP_SERVICE_UNAVAILABLE, str(exc), "udp_ports_exhausted")
        except Exception:  # nothing was started (aiortc failed under the answer): the place is free again
            self._admission.release(kind)
            log.exception("call of session %s could not be answered", session.info.session_id)
            return _error(HTTP_INTERNAL_ERROR, "the call could not be answered", "call_failed")
        except BaseException:  # cancelled (a shutdown): likewise, then on
            self._admission.release(kind)
            raise
        self._metrics.active.add(1, kind=kind.value)
        self._metrics.sessions.add(1, kind=kind.value)
        log.info("call %s: session %s (%s) opened", call_id, session.info.session_id, kind.value)
        await self._place(call_id, here)
        headers = {"Location": f"{CALLS_PATH}/{call_id}"}
        return Response(answer, status_code=HTTP_CREATED, media_type=SDP, headers=headers)

    async def _offer(self, request: Request) -> tuple[str, str | None]:
        """The offer's SDP and the session config (JSON text) it came with, in any of the three shapes.

        Raises:
            _BadRequest: The body is too large, of another type, or not the shape its type says.
        """
        try:
            body = await read_body(request.stream(), request.headers.get("content-length"), MAX_CALL_BODY_BYTES)
        except BodyTooLarge:
            message = f"The request body is larger than this server's limit of {MAX_CALL_BODY_BYTES} bytes."
            raise _BadRequest(_error(HTTP_PAYLOAD_TOO_LARGE, message, "request_too_large")) from None
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        try:
            if media_type == SDP:
                return _text(body, "sdp"), None
            if media_type == FORM_DATA:
                return _from_form(body, content_type)
            if media_type == "application/json":
                return _from_json(body)
        except ProtocolError as exc:
            raise _BadRequest(_error(HTTP_BAD_REQUEST, exc.message, exc.code, exc.param)) from None
        message = (
            f"Unsupported content type '{media_type or '(none)'}': post the SDP offer as application/sdp, "
            "multipart/form-data (sdp, session) or application/json ({sdp, session})."
        )
        raise _BadRequest(_error(HTTP_UNSUPPORTED_MEDIA_TYPE, message, "unsupported_content_type"))

    async def _place(self, call_id: str, here: str) -> None:
        """Tell the other doors that this one holds ``call_id`` (for a call's lifetime at most)."""
        if self._directory is None:
            return
        ttl_s = self._settings.session_lifetime_s + (self._settings.call_connect_timeout_s or 0)
        try:
            await self._directory.place(call_id, here, ttl_s)
        except Exception as exc:  # the redis package's errors: the call goes on, found on this door only
            log.warning("call %s not recorded in the call directory (%s): other doors cannot reach it", call_id, exc)

    async def _owner(self, call_id: str, via: HTTPConnection) -> str | None:
        """The URL of the other door that holds ``call_id``, when this door should forward ``via``'s
        request to it (not one forwarded already)."""
        if self._directory is None or forwarded(via.headers):
            return None
        try:
            owner = await self._directory.door_of(call_id)
        except Exception as exc:
            log.warning("call directory not read for call %s: %s", call_id, exc)
            return None
        here = door_url(self._settings, via.scope.get("server"))
        return owner if owner is not None and owner != here else None

    async def attach(self, call_id: str, sideband: Transport, via: HTTPConnection | None = None) -> bool:
        """Serve ``sideband`` as a sideband of call ``call_id`` until it leaves or the call ends;
        ``False`` (nothing sent) if there is no such live call. The caller has checked the key. A
        call another door holds is relayed there (``via``: the sideband's connect).
        """
        call = self._registry.get(call_id) if self._registry is not None else None
        if call is None:
            owner = await self._owner(call_id, via) if via is not None else None
            if owner is None:
                return False
            return await relay_sideband(owner, call_id, self._settings.api_key, sideband)
        log.info("call %s: sideband attached", call_id)
        if not await call.attach(sideband):
            return False
        log.info("call %s: sideband detached", call_id)
        return True

    async def hangup(self, request: Request) -> Response:
        """``POST /v1/realtime/calls/{call_id}/hangup``: end the call and free its place (200, no body)."""
        refusal = await self._server_key_refusal(request)
        if refusal is not None:
            return refusal
        call_id = request.path_params["call_id"]
        registry = self._registry
        if registry is None or not await registry.hangup(call_id):
            owner = await self._owner(call_id, request)
            path = f"{CALLS_PATH}/{quote(call_id, safe='')}/hangup"
            answer = await forward_hangup(owner, path, self._settings.api_key) if owner is not None else None
            if answer is not None:
                log.info("call %s: hang-up forwarded to %s (%d)", call_id, owner, answer.status_code)
                return answer
            return _error(HTTP_NOT_FOUND, f"Call '{call_id}' not found.", "call_not_found", "call_id")
        log.info("call %s hung up", call_id)
        return Response(status_code=200)


def _text(data: bytes, param: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"Invalid '{param}': not UTF-8 text.", code="invalid_value", param=param) from None


def _missing_sdp() -> ProtocolError:
    return ProtocolError("Missing required parameter: 'sdp'.", code="missing_required_parameter", param="sdp")


def _from_form(body: bytes, content_type: str) -> tuple[str, str | None]:
    form = parse_form(body, content_type)

    def field(name: str) -> str | None:
        if form.fields.get(name):
            return form.fields[name][0]
        if form.files.get(name):  # openai-node posts its parts as Blobs (filename="blob")
            return _text(form.files[name][0].data, name)
        return None

    sdp = field("sdp")
    if sdp is None:
        raise _missing_sdp()
    return sdp, field("session")


def _from_json(body: bytes) -> tuple[str, str | None]:
    try:
        raw = json.loads(body)
    except ValueError:
        raise ProtocolError(
            "We could not parse the JSON body of your request.", code="invalid_json", param=None
        ) from None
    if not isinstance(raw, dict):
        raise ProtocolError("The JSON body must be an object {sdp, session}.", code="invalid_json")
    sdp, session = raw.get("sdp"), raw.get("session")
    if not isinstance(sdp, str):
        raise _missing_sdp()
    if session is not None and not isinstance(session, dict):
        raise ProtocolError("Invalid type for 'session': expected an object.", code="invalid_type", param="session")
    return sdp, json.dumps(session) if session is not None else None
