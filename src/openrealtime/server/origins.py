"""Which web pages may talk to the server: the ``Origin`` check, for HTTP requests and WebSocket
handshakes alike.

A browser lets any page open a WebSocket to ``ws://127.0.0.1:8000`` and send it audio; the only thing
that tells the server which page is asking is the ``Origin`` header the browser adds (RFC 6454 §7,
RFC 6455 §10.2). So a request is allowed when it carries no ``Origin`` (not a browser: the ``openai``
SDK, curl, our own client), when its origin is the server's own (the ``Host`` it was reached at), or
when the origin is listed in ``allowed_origins``. ``Origin: null`` (sandboxed frames, ``file://``
pages, some redirects) is refused unless ``null`` itself is listed.

A refused WebSocket handshake is refused before the upgrade, with a 403 and an OpenAI-shaped JSON
body, rather than accepted and then closed: a page the server does not trust gets no WebSocket at
all, and browsers show the status in their console ("Unexpected response code: 403") while a page's
script learns nothing (close 1006), which is what a cross-origin page should learn. Non-browser
clients never send ``Origin`` and never meet this check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

ANY_ORIGIN = "*"
NULL_ORIGIN = "null"
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
HTTP_FORBIDDEN = 403
REFUSED_CODE = "origin_not_allowed"


def _normalize(origin: str) -> str:
    """``scheme://host[:port]`` lower-cased, the default port dropped (``null`` stays ``null``)."""
    origin = origin.strip().lower().rstrip("/")
    if origin == NULL_ORIGIN:
        return origin
    parts = urlsplit(origin)
    if not parts.scheme or not parts.hostname:
        return origin
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        return origin
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _host_and_port(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    parts = urlsplit(f"//{netloc.strip().lower()}")
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None:
        return None
    return parts.hostname, port if port is not None else default_port


@dataclass(frozen=True)
class OriginPolicy:
    """The origins allowed besides the server's own; ``any_origin`` when ``*`` is listed."""

    allowed: frozenset[str] = frozenset()
    any_origin: bool = False

    @classmethod
    def parse(cls, setting: str | None) -> OriginPolicy:
        """From the comma-separated setting: ``"https://app.example,http://localhost:3000"``, ``"*"``."""
        entries = [entry.strip() for entry in (setting or "").split(",") if entry.strip()]
        return cls(
            allowed=frozenset(_normalize(entry) for entry in entries if entry != ANY_ORIGIN),
            any_origin=ANY_ORIGIN in entries,
        )

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this ``Origin`` header, reaching the server at this ``Host``, may go on."""
        if origin is None:
            return True  # not a browser: browsers always send Origin on WebSocket handshakes
        normalized = _normalize(origin)
        if self.any_origin or normalized in self.allowed:
            return True
        if normalized == NULL_ORIGIN or host is None:
            return False
        return _same_origin(normalized, host)


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in DEFAULT_PORTS or parts.hostname is None:
        return False
    default_port = DEFAULT_PORTS[parts.scheme]
    theirs = _host_and_port(parts.netloc, default_port)
    ours = _host_and_port(host, default_port)
    return theirs is not None and theirs == ours


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def refusal_body(origin: str) -> bytes:
    """The 403 body, shaped like OpenAI's HTTP errors."""
    message = (
        f"Origin '{origin}' is not allowed to use this server; "
        "add it to --allowed-origins (OPENREALTIME_ALLOWED_ORIGINS) to allow it."
    )
    error = {"type": "invalid_request_error", "code": REFUSED_CODE, "message": message, "param": None}
    return json.dumps({"error": error}).encode()


class OriginGuard:
    """ASGI middleware: refuses HTTP requests and WebSocket handshakes from origins the policy refuses.

    Args:
        app: The app it guards.
        policy: Which origins are allowed.
        on_refused: Told the kind of request refused (``http`` or ``websocket``), for metrics.
    """

    def __init__(self, app: ASGIApp, policy: OriginPolicy, on_refused: Callable[[str], None] | None = None) -> None:
        self.app, self.policy, self.on_refused = app, policy, on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        origin = _header(headers, b"origin")
        if self.policy.allows(origin, _header(headers, b"host")):
            await self.app(scope, receive, send)
            return
        assert origin is not None  # a request without Origin is always allowed
        if self.on_refused is not None:
            self.on_refused(scope["type"])
        await _forbid(scope, receive, send, refusal_body(origin))


async def _forbid(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": HTTP_FORBIDDEN, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        prefix = "websocket.http.response"
        await send({"type": f"{prefix}.start", "status": HTTP_FORBIDDEN, "headers": headers})
        await send({"type": f"{prefix}.body", "body": body})
    else:  # a server without the denial extension answers a close before accept with 403 itself
        await send({"type": "websocket.close", "code": 1008, "reason": REFUSED_CODE})
