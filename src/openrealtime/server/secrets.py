"""Ephemeral client secrets (``ek_...``): the keys ``POST /v1/realtime/client_secrets`` mints.

A client secret is a key a browser or a phone may hold instead of the server's own key (reference
webrtc.md 1.1, 3.2). It opens sessions of one kind (realtime, transcription or translation) with the
session config attached when it was minted, as many as its holder likes until it expires; the expiry
limits *opening* sessions, and a session it opened lives on after it (OpenAI's rule). It does nothing
else: it cannot mint secrets or read ``/metrics`` (:mod:`~openrealtime.server.app` decides that).

The store is behind :class:`SecretStore`: :class:`MemorySecretStore`, the default, keeps secrets in
this process (they die with it); with ``--state-url redis://`` every server on that Redis shares them
(:class:`~openrealtime.server.redis_secrets.RedisSecretStore`: minted on one front door, valid on all;
:func:`secret_store_for` picks). Either keeps a
SHA-256 digest of each value, never the value: a lookup is a dict access keyed by the digest of what
was presented, so how long it takes says nothing about how many characters of a real secret a guess
got right (the digest of a guess shares no prefix with any secret's), and a memory dump holds no
usable key. It is bounded: expired secrets are dropped as time passes (an expiry heap, purged on
every mint and lookup), and past ``max_live`` secrets or ``max_chars`` characters of attached
configs a mint is refused with :class:`StoreFull`, which says when the next place frees.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from openrealtime.protocol.codec import SessionKind

SECRET_PREFIX = "ek_"
SECRET_BYTES = 16  # "ek_" and 32 hex characters, as OpenAI's; 128 bits from the OS's CSPRNG
MIN_TTL_S = 10  # OpenAI's bounds on expires_after.seconds, and its default
MAX_TTL_S = 7200
DEFAULT_TTL_S = 600
DEFAULT_MAX_LIVE_SECRETS = 1000
# Characters of attached session configs the store holds at most: 64 full 1 MiB requests, or a
# thousand configs of 64 KiB (long instructions and a dozen tools are a few KiB).
DEFAULT_MAX_CHARS = 64 * 1024 * 1024


def is_client_secret(key: str) -> bool:
    """Whether a presented key claims to be a client secret (and must then be a live one)."""
    return key.startswith(SECRET_PREFIX)


def shown(key: str) -> str:
    """A key as messages show it: only its ends, as OpenAI does (``ek_68a***63c2``)."""
    return f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"


@dataclass(frozen=True)
class ClientSecret:
    """What a live secret grants (its value is not kept).

    Attributes:
        kind: The only kind of session it opens.
        session_json: The session config attached at minting, as JSON text (what the client sent,
            already validated): applied to every session the secret opens, before ``session.created``.
        expires_at_s: Unix seconds after which it opens no more sessions.
    """

    kind: SessionKind
    session_json: str
    expires_at_s: int


class StoreFull(Exception):
    """No room for another live secret.

    Args:
        message: What to tell the client.
        retry_after_s: Seconds until the earliest live secret expires and frees a place.
    """

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


STORE_UNAVAILABLE_CODE = "client_secret_store_unavailable"


class SecretStoreUnavailable(Exception):
    """A shared store did not answer: neither the client's fault nor a bug of ours (a 503 to mint,
    an ``error`` with :data:`STORE_UNAVAILABLE_CODE` to a connect with a client secret)."""


class SecretStore(Protocol):
    """Where client secrets live between their minting and their expiry."""

    async def mint(self, kind: SessionKind, session_json: str, ttl_s: int) -> tuple[str, ClientSecret]:
        """A new secret's value and what it grants, alive for ``ttl_s`` seconds from now.

        Raises:
            StoreFull: The store holds its limit of live secrets.
            SecretStoreUnavailable: A shared store did not answer.
        """
        ...

    async def lookup(self, value: str) -> ClientSecret | None:
        """The live secret of this value; ``None`` for an unknown or expired one.

        Raises:
            SecretStoreUnavailable: A shared store did not answer.
        """
        ...

    async def live(self) -> int:
        """How many secrets are alive now."""
        ...

    async def close(self) -> None:
        """Let go of what the store holds open (a Redis store's connections)."""
        ...


def full_message(max_live: int, max_chars: int, retry_after_s: int) -> str:
    """What a refused mint tells the client (the same on every store)."""
    return (
        f"This server holds its limit of live client secrets ({max_live} secrets, "
        f"{max_chars} characters of session config); one expires in {retry_after_s} s. "
        "Mint secrets with a shorter expires_after.seconds, or raise --max-client-secrets."
    )


def new_value() -> str:
    """A fresh secret's value: ``ek_`` and 128 bits from the OS's CSPRNG."""
    return SECRET_PREFIX + secrets.token_hex(SECRET_BYTES)


def digest(value: str) -> bytes:
    """The SHA-256 of a secret's value: what a store keeps and looks up instead of the value."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


@dataclass
class MemorySecretStore:
    """Client secrets in this process's memory (the default :class:`SecretStore`).

    Args:
        max_live: Live secrets it holds at most.
        max_chars: Characters of attached session configs it holds at most.
        clock: Unix time in seconds (injected in tests).
    """

    max_live: int = DEFAULT_MAX_LIVE_SECRETS
    max_chars: int = DEFAULT_MAX_CHARS
    clock: Callable[[], float] = time.time
    _secrets: dict[bytes, ClientSecret] = field(default_factory=dict)
    _expiries: list[tuple[int, bytes]] = field(default_factory=list)  # a heap: the next to expire first
    _chars: int = 0

    async def mint(self, kind: SessionKind, session_json: str, ttl_s: int) -> tuple[str, ClientSecret]:
        return self.mint_now(kind, session_json, ttl_s)

    async def lookup(self, value: str) -> ClientSecret | None:
        return self.lookup_now(value)

    async def live(self) -> int:
        return self.live_now()

    async def close(self) -> None:
        """Nothing to let go of (the secrets stay until they expire)."""

    def mint_now(self, kind: SessionKind, session_json: str, ttl_s: int) -> tuple[str, ClientSecret]:
        """:meth:`mint`, without the coroutine (the memory store never waits)."""
        now = self.clock()
        self._purge(now)
        if len(self._secrets) >= self.max_live or self._chars + len(session_json) > self.max_chars:
            retry_after_s = max(1, math.ceil(self._expiries[0][0] - now)) if self._expiries else 1
            raise StoreFull(full_message(self.max_live, self.max_chars, retry_after_s), retry_after_s)
        value = new_value()
        secret = ClientSecret(kind=kind, session_json=session_json, expires_at_s=int(now) + ttl_s)
        key = digest(value)
        self._secrets[key] = secret
        self._chars += len(session_json)
        heapq.heappush(self._expiries, (secret.expires_at_s, key))
        return value, secret

    def lookup_now(self, value: str) -> ClientSecret | None:
        """:meth:`lookup`, without the coroutine."""
        self._purge(self.clock())
        return self._secrets.get(digest(value)) if is_client_secret(value) else None

    def live_now(self) -> int:
        """:meth:`live`, without the coroutine."""
        self._purge(self.clock())
        return len(self._secrets)

    def _purge(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, key = heapq.heappop(self._expiries)
            gone = self._secrets.pop(key, None)
            if gone is not None:
                self._chars -= len(gone.session_json)


def open_secret_store(state_url: str | None, max_live: int = DEFAULT_MAX_LIVE_SECRETS) -> SecretStore:
    """The store for a ``--state-url``: Redis (shared by every server on it) for ``redis://``,
    ``rediss://`` and ``unix://``, else this process's memory."""
    scheme = state_url.split("://", 1)[0].lower() if state_url and "://" in state_url else ""
    if scheme in ("redis", "rediss", "unix"):
        from openrealtime.server.redis_secrets import RedisSecretStore

        assert state_url is not None
        return RedisSecretStore.from_url(state_url, max_live=max_live)
    return MemorySecretStore(max_live=max_live)
