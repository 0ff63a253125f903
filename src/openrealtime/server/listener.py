"""How the server listens: uvicorn's configuration, the same for ``serve`` and the embedded server.

What it adds to uvicorn's defaults, each against one way of holding a server without using it:

- **A request-header deadline.** uvicorn's HTTP protocol starts its keep-alive timer only after a
  response, so a connection that sends nothing, or half a request header a byte at a time, was held
  forever (300 of 300 after 90 s). :func:`header_deadline_protocol` closes a connection that has not
  sent a whole request header (an HTTP request or a WebSocket upgrade) within
  ``handshake_timeout_s`` of connecting or of its last response.
- **No permessage-deflate.** It is bounded per message by ``ws_max_size`` (websockets passes the
  limit to ``zlib``), but JSON of repeated characters compresses 1,000 to 1 (32 MiB in 33 KB), and
  uvicorn inflates every frame of one socket read before the app takes any: a 256 KiB read could
  become 256 MiB held by one connection, before authentication. What it saves is half of the audio's
  bytes on the wire (base64 speech deflates to 52 %), which loopback and LAN clients do not need.
- **A connection cap from the file-descriptor limit.** The soft ``RLIMIT_NOFILE`` is raised to the
  hard one, and uvicorn answers 503 past that limit less :data:`FD_RESERVE`, kept for model files,
  logs and the sessions' own sockets, so ``accept()`` never fails for want of a descriptor.
- Log lines scrubbed and folded (:mod:`~openrealtime.server.logs`).

With ``ssl_certfile`` and ``ssl_keyfile`` it serves TLS (uvicorn's own ``ssl_*`` options): HTTPS
and ``wss://`` on the same port, and nothing in the clear there.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from openrealtime.server.logs import install_log_filters
from openrealtime.server.settings import Settings

MAX_FRAME_BYTES = 32 * 1024 * 1024  # a 15 MiB append is 20 MiB of base64: let it reach our check
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0
KEEP_ALIVE_S = 5  # uvicorn's default, named: idle time between two HTTP requests on one connection
FD_RESERVE = 128  # descriptors kept out of the connection cap: models, voices, logs, pipes
MIN_CONNECTIONS = 16


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard one; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # keep the soft limit; the cap below follows it
    return soft


def connection_cap(descriptor_limit: int) -> int:
    """Connections uvicorn serves at once, keeping :data:`FD_RESERVE` descriptors for everything else."""
    return max(MIN_CONNECTIONS, descriptor_limit - FD_RESERVE)


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection that takes over ``timeout_s`` to send a request header."""

    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # a whole request header: the app (or the WebSocket) owns the pace now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()  # the next request header has the same deadline

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            # Upgraded to a WebSocket meanwhile: the transport is no longer ours to close.
            if self.transport.get_protocol() is self and self.conn.their_state is h11.IDLE:
                self.transport.close()

    return HeaderDeadlineProtocol


def uvicorn_config(app: Any, settings: Settings, *, log_level: str, lifespan: str = "auto") -> uvicorn.Config:
    """The configuration both ``serve`` and the embedded server run with.

    Raises:
        ValueError: Only one of ``ssl_certfile`` and ``ssl_keyfile`` is set.
    """
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise ValueError("TLS needs both ssl_certfile and ssl_keyfile (--ssl-certfile, --ssl-keyfile)")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan=lifespan,  # type: ignore[arg-type]
        http=header_deadline_protocol(settings.handshake_timeout_s),
        ws_max_size=MAX_FRAME_BYTES,
        ws_ping_interval=PING_INTERVAL_S,
        ws_ping_timeout=PING_TIMEOUT_S,
        ws_per_message_deflate=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=connection_cap(raise_descriptor_limit()),
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )
    install_log_filters()  # after the Config, which (re)configures uvicorn's loggers
    return config
