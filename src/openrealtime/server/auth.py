"""Authentication as OpenAI does it: ``Authorization: Bearer`` or, from browsers, the
``openai-insecure-api-key.<key>`` subprotocol offered next to ``realtime`` (reference 2.1, 2.4); and
the throttle on guessing.

Keys are compared in constant time. A connect offering two subprotocol keys is refused rather than
one of them picked (it used to be the last). A key that starts with ``ek_`` is an ephemeral client
secret (:mod:`~openrealtime.server.secrets`): it passes only while the store knows it and it is
live, with or without a server key (a stale secret shows up as the failure it is); the result then
carries what it grants, and the route decides whether a secret may be used there.

Failures (a wrong key, an unknown or expired client secret) are throttled per client address: past
``max_failures`` in a minute, every attempt from that address is refused, even with the right key,
until the minute's older failures have aged out; otherwise 600 guesses took 0.9 s.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from openrealtime.server.secrets import (
    STORE_UNAVAILABLE_CODE,
    ClientSecret,
    SecretStore,
    SecretStoreUnavailable,
    is_client_secret,
    shown,
)

SUBPROTOCOL_REALTIME = "realtime"
SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
UNAVAILABLE = "unavailable"  # AuthResult.reason when a shared secret store did not answer


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    message: str = ""
    code: str | None = None
    subprotocol: str | None = None  # what the 101 response must select
    reason: str = ""  # why it failed, for logs and metrics: missing, invalid, ambiguous, unavailable (never the key)
    secret: ClientSecret | None = None  # the live client secret presented, if it was one


async def authenticate(
    headers: Mapping[str, str],
    subprotocols: Sequence[str],
    api_key: str | None,
    secrets: SecretStore | None = None,
) -> AuthResult:
    """Check the key and pick the subprotocol to select.

    The server's key passes; so does a live client secret from ``secrets`` (the result carries it).
    With no server key, anything passes but a client secret that is not live.
    """
    subprotocol = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
    authorization = headers.get("authorization", "")
    offered = [p[len(SUBPROTOCOL_KEY_PREFIX) :] for p in subprotocols if p.startswith(SUBPROTOCOL_KEY_PREFIX)]
    presented: str | None = None
    if authorization.lower().startswith("bearer "):
        presented = authorization[len("bearer ") :].strip()
    elif len(offered) == 1:
        presented = offered[0]
    checks_secret = secrets is not None and presented is not None and is_client_secret(presented)
    if api_key is None and not checks_secret:
        return AuthResult(ok=True, subprotocol=subprotocol)
    if presented is None and len(offered) > 1:
        return AuthResult(
            ok=False,
            message=f"Offer one API key, not {len(offered)}, as an '{SUBPROTOCOL_KEY_PREFIX}' subprotocol.",
            code="invalid_api_key",
            subprotocol=subprotocol,
            reason="ambiguous",
        )
    if presented is None:
        return AuthResult(
            ok=False,
            message="Missing bearer or basic authentication in header",
            subprotocol=subprotocol,
            reason="missing",
        )
    if api_key is not None and hmac.compare_digest(presented.encode(), api_key.encode()):
        return AuthResult(ok=True, subprotocol=subprotocol)
    try:
        secret = await secrets.lookup(presented) if secrets is not None and checks_secret else None
    except SecretStoreUnavailable as exc:
        # Not a wrong key: the caller must not count it as a guess (reason ``unavailable``).
        return AuthResult(
            ok=False, message=str(exc), code=STORE_UNAVAILABLE_CODE, subprotocol=subprotocol, reason=UNAVAILABLE
        )
    if secret is not None:
        return AuthResult(ok=True, subprotocol=subprotocol, secret=secret)
    # Like OpenAI, show only the key's ends; never log it whole.
    message = f"Incorrect API key provided: {shown(presented)}."
    if is_client_secret(presented):
        message += (
            " A client secret (ek_) opens sessions until it expires, on the server that minted it"
            " (or on any server sharing its --state-url redis://)."
        )
    return AuthResult(ok=False, message=message, code="invalid_api_key", subprotocol=subprotocol, reason="invalid")


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
