"""The server a network bench measures: one given by ``--url`` (any Realtime server, OpenAI's
included), or this package's server started in this process.

A given URL is used as it is, path and query included; only a bare ``ws://host:port`` gains the
bench's default path. The key goes with every connection as ``Authorization: Bearer``; for a server
started here it is the one its settings require (``OPENREALTIME_API_KEY``), if any.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import InvalidHandshake

from openrealtime.bench.report import machine
from openrealtime.exceptions import ConnectionClosedError, ProtocolError

if TYPE_CHECKING:
    from openrealtime.server.settings import Settings

EMBEDDED_PORT = 0  # a free port

# What a server that cannot be measured raises in the clients: the command reports it in one line.
SERVER_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # unreachable, connection refused, timed out
    InvalidHandshake,  # the HTTP upgrade was refused (OpenAI answers a wrong key with 401)
    ConnectionClosedError,  # closed by the server (ours closes an unauthenticated session)
    ProtocolError,  # the assistant client: the server refused the session's configuration
    RuntimeError,  # the transcription and translation clients: the same
)


@dataclass(frozen=True)
class Target:
    """Where a bench connects and how.

    Attributes:
        url: The full WebSocket URL of the session endpoint.
        api_key: Sent as ``Authorization: Bearer``; ``None`` sends none.
        settings: The settings of the server started in this process; ``None`` for a given URL.
    """

    url: str
    api_key: str | None
    settings: Settings | None = None

    @property
    def in_process(self) -> bool:
        return self.settings is not None

    def machine(self) -> dict[str, Any]:
        """:func:`~openrealtime.bench.report.machine`, with this server's URL and settings."""
        return machine(self.settings, url=self.url)


def with_default_path(url: str, default_path: str) -> str:
    """``url`` as given when it names a path; a bare ``scheme://host[:port]`` gains ``default_path``
    (a path with an optional ``?query``)."""
    parts = urlsplit(url)
    if parts.path not in ("", "/"):
        return url
    default = urlsplit(default_path)
    return urlunsplit((parts.scheme, parts.netloc, default.path, parts.query or default.query, parts.fragment))


@contextlib.asynccontextmanager
async def server_target(
    url: str | None, default_path: str, *, api_key: str | None, overrides: Mapping[str, Any] | None = None
) -> AsyncIterator[Target]:
    """Yield the :class:`Target` for ``url``, or start this package's server for the duration.

    Args:
        url: A running server's URL (``--url``), or ``None`` to start one here on a free port.
        default_path: The endpoint path and query of the bench's session kind
            (``/v1/realtime?intent=transcription``).
        api_key: The key for a given ``url`` (``--api-key``); ignored for a server started here.
        overrides: More settings of a server started here (``asr_url``: bench/remote_engines.py).
    """
    if url is not None:
        yield Target(with_default_path(url, default_path), api_key)
        return
    from openrealtime.server.embedded import running_server
    from openrealtime.server.settings import Settings

    # A bench measures how many sessions fit: the server it starts admits them all.
    unlimited = {f"max_{kind}_sessions": 0 for kind in ("transcription", "realtime", "translation")}
    settings = Settings.load(port=EMBEDDED_PORT, **unlimited, **(overrides or {}))
    async with running_server(settings) as base:
        yield Target(f"{base}{default_path}", settings.api_key, settings)
