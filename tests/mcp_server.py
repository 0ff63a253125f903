"""A small real MCP server for tests: the ``mcp`` SDK's ``MCPServer`` over streamable HTTP on loopback.

Its tools: ``get_weather`` (read-only; the city defaults to Paris, so a model that sends ``{}`` still
gets an answer), ``fail`` (raises, so the call reports a tool error) and ``slow`` (sleeps). Requests'
headers are recorded (``headers``), and a server started with ``token`` answers 401 without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

STARTUP_TIMEOUT_S = 10.0


def weather_server() -> MCPServer:
    server = MCPServer("weather")

    @server.tool(description="The current weather in a city.", annotations=ToolAnnotations(readOnlyHint=True))
    def get_weather(city: str = "Paris") -> str:
        return f"Sunny in {city}, 21 degrees."

    @server.tool(description="A tool that always fails.")
    def fail() -> str:
        raise ValueError("the weather station is down")

    @server.tool(description="A tool that takes its time.")
    async def slow(seconds: float = 5.0) -> str:
        await asyncio.sleep(seconds)
        return "done"

    return server


@dataclass
class Guard:
    """ASGI middleware: records each request's headers; with ``token``, refuses requests without it."""

    app: Any
    token: str | None = None
    headers: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.headers.append(headers)
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_mcp_server(token: str | None = None) -> AsyncIterator[tuple[str, Guard]]:
    """Serve :func:`weather_server` on 127.0.0.1; yields its URL (``.../mcp``) and the guard."""
    guard = Guard(weather_server().streamable_http_app(), token=token)
    server = uvicorn.Server(uvicorn.Config(guard, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/mcp", guard
    finally:
        server.should_exit = True
        await task


def closed_port_url() -> str:
    """The URL of a loopback port nobody listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"
