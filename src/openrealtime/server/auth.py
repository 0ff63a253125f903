"""WebSocket authentication as OpenAI does it: ``Authorization: Bearer`` or, from browsers, the
``openai-insecure-api-key.<key>`` subprotocol offered next to ``realtime`` (reference 2.1, 2.4)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUBPROTOCOL_REALTIME = "realtime"
SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    message: str = ""
    code: str | None = None
    subprotocol: str | None = None  # what the 101 response must select


def authenticate(headers: Mapping[str, str], subprotocols: Sequence[str], api_key: str | None) -> AuthResult:
    """Check the key (if one is configured) and pick the subprotocol to select."""
    subprotocol = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
    if api_key is None:
        return AuthResult(ok=True, subprotocol=subprotocol)
    presented: str | None = None
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        presented = authorization[len("bearer ") :].strip()
    else:
        for offered in subprotocols:
            if offered.startswith(SUBPROTOCOL_KEY_PREFIX):
                presented = offered[len(SUBPROTOCOL_KEY_PREFIX) :]
    if presented is None:
        return AuthResult(ok=False, message="Missing bearer or basic authentication in header", subprotocol=subprotocol)
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        # Like OpenAI, show only the key's ends; never log it whole.
        shown = f"{presented[:3]}***{presented[-4:]}" if len(presented) > 8 else "***"
        return AuthResult(
            ok=False,
            message=f"Incorrect API key provided: {shown}.",
            code="invalid_api_key",
            subprotocol=subprotocol,
        )
    return AuthResult(ok=True, subprotocol=subprotocol)
