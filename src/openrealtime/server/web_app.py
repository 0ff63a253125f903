"""The browser app: ``GET /`` and its assets under ``/app/``, read once from the package data in
``openrealtime/web`` (issue 11, "The browser app").

The page talks to its own server only: it mints an ephemeral key (``POST
/v1/realtime/client_secrets``, or ``/v1/realtime/translations/client_secrets``) and opens a WebRTC
call with it (``/v1/realtime/calls``, ``/v1/realtime/translations/calls``). It never holds the
server's key beyond that one mint request (when a key is set, the user types it and the page keeps
it in memory; docs/security.md, "The browser app"). Everything it loads comes from here, and a strict
Content-Security-Policy holds it to that: scripts, styles and images from this origin only,
connections (``fetch``, WebSocket) to this origin only, no frames, no plugins, no form posts, not
embeddable.

``GET /app/config.json`` tells the page what it needs before the first mint: whether the server
wants a key, and the target languages its translation sessions can serve and speak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openrealtime.engines.llm_translator import LANGUAGE_NAMES
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.languages import ENGLISH, LanguageSupport
from openrealtime.server.settings import Settings

ASSET_PREFIX = "/app/"
INDEX = "index.html"
# Every file the page loads, with its content type; anything else under /app/ is a 404.
CONTENT_TYPES = {
    INDEX: "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "call.js": "text/javascript; charset=utf-8",
    "captions.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self'",
        "connect-src 'self'",  # fetch and WebSocket to this origin only (WebRTC is not a fetch)
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    # The page asks for the microphone itself; nothing it embeds may (it embeds nothing).
    "permissions-policy": "microphone=(self), camera=(), geolocation=()",
    "cache-control": "no-cache",
}
DEFAULT_TARGET_LANGUAGE = "es"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def load_assets() -> dict[str, Asset]:
    """The page's files from the package data, read once."""
    folder = resources.files("openrealtime") / "web"
    return {name: Asset((folder / name).read_bytes(), kind) for name, kind in CONTENT_TYPES.items()}


def target_languages(engines: EngineSet) -> list[dict[str, str]]:
    """The languages an English speaker can be translated into here and heard in, by English name."""
    support = LanguageSupport(engines)
    served = [
        {"code": code, "name": name}
        for code, name in LANGUAGE_NAMES.items()
        if code != ENGLISH and support.route(ENGLISH, code) is not None and support.can_speak(code)
    ]
    return sorted(served, key=lambda language: language["name"])


class WebApp:
    """The page's routes. ``engines`` is called per request (the engines load after the app is built)."""

    def __init__(self, settings: Settings, engines: Callable[[], EngineSet]) -> None:
        self._settings = settings
        self._engines = engines
        self._assets = load_assets()

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route(ASSET_PREFIX + "config.json", self.config, methods=["GET"]),
            Route(ASSET_PREFIX + "{name}", self.asset, methods=["GET", "HEAD"]),
        ]

    async def index(self, request: Request) -> Response:
        return self._send(self._assets[INDEX])

    async def asset(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        return self._send(asset)

    async def config(self, request: Request) -> Response:
        languages = target_languages(self._engines())
        codes = {language["code"] for language in languages}
        body = {
            "key_required": self._settings.api_key is not None,
            "languages": languages,
            "default_language": DEFAULT_TARGET_LANGUAGE if DEFAULT_TARGET_LANGUAGE in codes else None,
        }
        return JSONResponse(body, headers=SECURITY_HEADERS)

    @staticmethod
    def _send(asset: Asset) -> Response:
        return Response(asset.body, media_type=asset.content_type, headers=SECURITY_HEADERS)
