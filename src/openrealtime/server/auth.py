"""Authentication as OpenAI does it: ``Authorization: Bearer`` or, from browsers, the
``openai-insecure-api-key.<key>`` subprotocol offered next to ``realtime`` (reference 2.1, 2.4); and
the throttle on guessing.

Keys are compared in constant time. A connect offering two subprotocol keys is refused rather than
one of them picked (it used to be the last). Failures are throttled per client address: past
``max_failures`` in a minute, every attempt from that address is refused, even with the right key,
until the minute's older failures have aged out; otherwise 600 guesses took 0.9 s.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SUBPROTOCOL_REALTIME = "realtime"
SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    message: str = ""
    code: str | None = None
    subprotocol: str | None = None  # what the 101 response must select
    reason: str = ""  # why it failed, for logs and metrics: missing, invalid, ambiguous (never the key)


def authenticate(headers: Mapping[str, str], subprotocols: Sequence[str], api_key: str | None) -> AuthResult:
    """Check the key (if one is configured) and pick the subprotocol to select."""
    subprotocol = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
    if api_key is None:
        return AuthResult(ok=True, subprotocol=subprotocol)
    presented: str | None = None
    authorization = headers.get("authorization", "")
    offered = [p[len(SUBPROTOCOL_KEY_PREFIX) :] for p in subprotocols if p.startswith(SUBPROTOCOL_KEY_PREFIX)]
    if authorization.lower().startswith("bearer "):
        presented = authorization[len("bearer ") :].strip()
    elif len(offered) > 1:
        return AuthResult(
            ok=False,
            message=f"Offer one API key, not {len(offered)}, as an '{SUBPROTOCOL_KEY_PREFIX}' subprotocol.",
            code="invalid_api_key",
            subprotocol=subprotocol,
            reason="ambiguous",
        )
    elif offered:
        presented = offered[0]
    if presented is None:
        return AuthResult(
            ok=False,
            message="Missing bearer or basic authentication in header",
            subprotocol=subprotocol,
            reason="missing",
        )
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        # Like OpenAI, show only the key's ends; never log it whole.
        shown = f"{presented[:3]}***{presented[-4:]}" if len(presented) > 8 else "***"
        return AuthResult(
            ok=False,
            message=f"Incorrect API key provided: {shown}.",
            code="invalid_api_key",
            subprotocol=subprotocol,
            reason="invalid",
        )
    return AuthResult(ok=True, subprotocol=subprotocol)


THROTTLE_WINDOW_S = 60.0
MAX_TRACKED_ADDRESSES = 10_000  # beyond this, the address that failed least recently is forgotten
NO_THROTTLE = 0


@dataclass
class AuthThrottle:
    """Failed authentications per client address over the last minute; time is passed in.

    Args:
        max_failures: Failures an address may have in ``window_s`` before it is refused (0: never).
    """

    max_failures: int
    window_s: float = THROTTLE_WINDOW_S
    max_addresses: int = MAX_TRACKED_ADDRESSES
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, address: str, now: float) -> bool:
        """Whether ``address`` must be refused without its key being looked at."""
        if self.max_failures == NO_THROTTLE:
            return False
        failures = self._failures.get(address)
        if failures is None:
            return False
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return False
        return len(failures) >= self.max_failures

    def failed(self, address: str, now: float) -> None:
        """Record one failure of ``address``."""
        if self.max_failures == NO_THROTTLE:
            return
        failures = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
        failures.append(now)
        self._failures[address] = failures  # re-inserted: the dict stays ordered by last failure
        if len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]
