"""How ``openrealtime serve`` stops: SIGTERM drains, SIGINT stops as uvicorn does.

uvicorn's own shutdown, on either signal, closes every WebSocket at once with 1012 and then raises
the signal again, so the process ends killed by it. A door behind a load balancer is stopped with
SIGTERM (Kubernetes, systemd, docker stop), and there that loses every turn in flight. So here the
first SIGTERM starts a :class:`~openrealtime.server.drain.Drain` instead: the door turns unready and
refuses new sessions, lets running turns finish within the grace, ends its sessions so that they
resume elsewhere, and only then lets uvicorn shut down; the process exits 0. A second SIGTERM, or a
SIGINT (Ctrl+C at a terminal, where waiting 30 s would surprise), stops at once as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from openrealtime.server.drain import Drain

log = logging.getLogger(__name__)

# After the drain, what uvicorn may still wait for (an upload being answered, a refused connect's
# close): never forever.
SHUTDOWN_TIMEOUT_S = 10


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining ``drain`` on the first SIGTERM before it shuts down."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        if config.timeout_graceful_shutdown is None:
            config.timeout_graceful_shutdown = SHUTDOWN_TIMEOUT_S
        super().__init__(config)
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_asked = False
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self._drain_asked and not self.should_exit and self._loop is not None:
            # A signal handler runs between two bytecodes of the loop's thread: hand over to the loop.
            # Not recorded as captured: uvicorn would raise it again at exit, and we exit 0.
            self._drain_asked = True
            self._loop.call_soon_threadsafe(self.start_drain)
            return
        super().handle_exit(sig, frame)

    def start_drain(self) -> None:
        """Drain, then shut down (what the first SIGTERM does)."""
        if self._draining is None:
            log.info("SIGTERM: draining before shutting down (a second SIGTERM or Ctrl+C stops at once)")
            self._draining = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.drain.run()
        finally:
            self.should_exit = True
