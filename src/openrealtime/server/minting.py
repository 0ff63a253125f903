"""Minting client secrets: ``POST /v1/realtime/client_secrets`` and
``POST /v1/realtime/translations/client_secrets``, as OpenAI answers them (reference webrtc.md 1.1).

The body is ``{"expires_after": {"anchor": "created_at", "seconds": 10..7200}, "session": {...}}``,
both optional on the first route (600 s and a default realtime session), ``session`` with its
``model`` required on the translation route (as the SDK's types have it). The answer is ``{"value":
"ek_...", "expires_at": <unix s>, "session": <the full session object>}``: the session a connect with
the secret will get, built and updated by :func:`~openrealtime.server.sessions.resolved_session`, so
a config is checked by the very code that checks ``session.update`` and its errors read the same
(``invalid_request_error`` with OpenAI's ``code`` and a ``param`` such as ``session.audio.output.speed``).
Who may mint is decided by the app: the server's key, never a client secret.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import SessionKind, validation_error
from openrealtime.protocol.config import WireModel
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.secrets import (
    DEFAULT_TTL_S,
    MAX_TTL_S,
    MIN_TTL_S,
    STORE_UNAVAILABLE_CODE,
    SecretStore,
    SecretStoreUnavailable,
    StoreFull,
)
from openrealtime.server.sessions import Refusal, SessionUpdate, parse_session_config, resolved_session
from openrealtime.server.settings import Settings

# A body larger than this is refused unread (413): a session config is instructions and tools, a few
# KiB; a megabyte leaves long prompts room while bounding what one request can make the store hold.
MAX_BODY_BYTES = 1024 * 1024
HTTP_BAD_REQUEST = 400
HTTP_PAYLOAD_TOO_LARGE = 413
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVICE_UNAVAILABLE = 503
STORE_RETRY_AFTER_S = 1  # a shared store that did not answer: worth trying again at once
STORE_FULL_CODE = "client_secret_limit_reached"
_DEFAULT_SESSION = {SessionKind.REALTIME: '{"type":"realtime"}'}


class ExpiresAfter(WireModel):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(default=DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S)


class SecretRequest(WireModel):
    """The body of a mint (``ClientSecretCreateParams``); ``session`` is checked as an update is."""

    expires_after: ExpiresAfter = Field(default_factory=ExpiresAfter)
    session: dict[str, Any] | None = None


@dataclass(frozen=True)
class MintRequest:
    """A checked mint: what the secret opens, for how long, and its config as JSON text."""

    kind: SessionKind
    ttl_s: int
    session_json: str
    update: SessionUpdate


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class BodyTooLarge(Exception):
    """The request body is over :data:`MAX_BODY_BYTES`."""


def error_body(
    message: str, code: str | None, param: str | None = None, error_type: str = "invalid_request_error"
) -> dict[str, Any]:
    """OpenAI's HTTP error body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


async def read_body(chunks: AsyncIterable[bytes], declared_length: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read only while it stays under ``limit`` bytes.

    Raises:
        BodyTooLarge: The declared ``Content-Length`` or the bytes read pass ``limit``.
    """
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in chunks:
        body += chunk  # bounded by ``limit`` just below
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unparsable(detail: str) -> ProtocolError:
    return ProtocolError(
        f"We could not parse the JSON body of your request ({detail}). The API expects a JSON object.",
        code="invalid_json",
    )


def parse_mint_request(body: bytes, route: SessionKind) -> MintRequest:
    """Check a mint's body for ``route`` (``REALTIME``: realtime or transcription secrets; ``TRANSLATION``).

    Raises:
        ProtocolError: What is wrong, with OpenAI's code and param.
    """
    try:
        raw = json.loads(body, parse_constant=_refuse_constant) if body.strip() else {}
    except RecursionError:
        raise _unparsable("it nests too deep") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, NaN, a number of more than 4,300 digits
        raise _unparsable(exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)) from None
    if not isinstance(raw, dict):
        raise ProtocolError(
            "We could not parse the JSON body of your request: expected a JSON object.", code="invalid_json"
        )
    try:
        request = SecretRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, None) from None
    if request.session is None:
        if route not in _DEFAULT_SESSION:
            raise ProtocolError(
                "Missing required parameter: 'session'.", code="missing_required_parameter", param="session"
            )
        session_json = _DEFAULT_SESSION[route]
    else:
        session_json = json.dumps(request.session, separators=(",", ":"), ensure_ascii=False)
    update = parse_session_config(session_json, route)
    kind = route
    if route is SessionKind.REALTIME and getattr(update.session, "type", None) == "transcription":
        kind = SessionKind.TRANSCRIPTION
    if route is SessionKind.TRANSLATION and getattr(update.session, "model", None) is None:
        raise ProtocolError(
            "Missing required parameter: 'session.model'.", code="missing_required_parameter", param="session.model"
        )
    return MintRequest(kind=kind, ttl_s=request.expires_after.seconds, session_json=session_json, update=update)


async def mint(
    body: bytes, route: SessionKind, *, store: SecretStore, settings: Settings, engines: EngineSet
) -> Answer:
    """Answer one mint request on ``route`` (its key already checked)."""
    try:
        request = parse_mint_request(body, route)
    except ProtocolError as exc:
        return Answer(HTTP_BAD_REQUEST, error_body(exc.message, exc.code, exc.param, exc.error_type), {})
    session = resolved_session(request.kind, request.update, settings, engines)
    if isinstance(session, Refusal):
        return Answer(
            HTTP_BAD_REQUEST, error_body(session.message, session.code, session.param, session.error_type), {}
        )
    try:
        value, secret = await store.mint(request.kind, request.session_json, request.ttl_s)
    except StoreFull as exc:
        full = error_body(exc.message, STORE_FULL_CODE, error_type="server_error")
        return Answer(HTTP_TOO_MANY_REQUESTS, full, {"Retry-After": str(exc.retry_after_s)})
    except SecretStoreUnavailable as exc:
        down = error_body(str(exc), STORE_UNAVAILABLE_CODE, error_type="server_error")
        return Answer(HTTP_SERVICE_UNAVAILABLE, down, {"Retry-After": str(STORE_RETRY_AFTER_S)})
    # The answer holds a key: no cache may keep it.
    answer = {"value": value, "expires_at": secret.expires_at_s, "session": session}
    return Answer(200, answer, {"Cache-Control": "no-store"})
