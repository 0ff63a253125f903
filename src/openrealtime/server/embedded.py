"""Run the real server inside this process on a free loopback port (demo, bench, tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.app import create_app
from openrealtime.server.listener import uvicorn_config
from openrealtime.server.secrets import SecretStore
from openrealtime.server.settings import Settings
from openrealtime.state.store import StateStore

STARTUP_TIMEOUT_S = 120.0


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings | None = None,
    *,
    engines: EngineSet | None = None,
    secrets: SecretStore | None = None,
    state: StateStore | None = None,
) -> AsyncIterator[str]:
    """Start the server on ``127.0.0.1`` (port 0 unless ``settings.port`` is set); yields its ws base URL
    (``wss://`` when ``settings`` has a certificate). ``state``: a session state store to share (two
    servers on one store stand for front doors on one Redis)."""
    settings = settings or Settings.load(port=0)
    app = create_app(settings, engines=engines, secrets=secrets, state=state)
    config = uvicorn_config(app, settings, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server stopped during start-up")
                await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "wss" if settings.ssl_certfile else "ws"
        yield f"{scheme}://{settings.host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
