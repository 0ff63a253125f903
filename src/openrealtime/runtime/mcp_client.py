"""The MCP client: lists and calls the tools of remote MCP servers for the sessions, off their core.

Each :class:`~openrealtime.session.mcp_commands.ListMcpTools` or
:class:`~openrealtime.session.mcp_commands.CallMcpTool` is one exchange with the server over the
official ``mcp`` SDK's streamable-HTTP client (connect, handshake, one request, close), on the event
loop (it is network I/O: no engine thread is held), under ``timeout_s``. Whatever goes wrong becomes
the result's ``error`` in the shape of OpenAI's ``mcp_call`` errors, so the session reports
``mcp_list_tools.failed`` or ``response.mcp_call.failed`` and goes on: an HTTP status or an
unreachable server is an ``http_error``, a JSON-RPC error a ``protocol_error``, a tool that reports
failure a ``tool_execution_error``. The headers (the client's credentials) are never logged.

The server connects to the URLs its clients give, so ``allowed_hosts`` (``--mcp-hosts``) bounds
where: a server at any other host is not contacted, and its listing fails with ``http_error`` 403.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from openrealtime.session.mcp_commands import (
    CallMcpTool,
    ListMcpTools,
    McpServer,
    McpToolCalled,
    McpToolInfo,
    McpToolsListed,
    http_error,
    protocol_error,
    tool_error,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0  # one listing or one call, connection and handshake included
MAX_OUTPUT_CHARS = 64 * 1024  # a tool's output kept for the model and the item; the rest is cut
MAX_PAGES = 20  # pages of a server's tool list read at most (a server that pages without end)
UNREACHABLE = 0  # the http_error code of a server that never answered (no HTTP status to report)


class _HttpStatus(Exception):
    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or f"The MCP server answered HTTP {status}.")
        self.status = status


def allowed_hosts(setting: str) -> frozenset[str] | None:
    """``--mcp-hosts``: ``*`` any host (``None``), ``none`` (or empty) none, else the listed ones."""
    if setting.strip() == "*":
        return None
    hosts = {h.strip().lower() for h in setting.split(",") if h.strip()}
    return frozenset(hosts - {"none"})


@dataclass
class McpClient:
    """Runs the MCP commands of every session of one server process.

    Args:
        timeout_s: The longest one listing or call may take, connection and handshake included.
        allowed_hosts: The hosts (``host`` or ``host:port``) it connects to; ``None``: any.
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    allowed_hosts: frozenset[str] | None = None

    def _check(self, url: str) -> None:
        if self.allowed_hosts is None:
            return
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if host not in self.allowed_hosts and f"{host}:{port}" not in self.allowed_hosts:
            raise _HttpStatus(403, f"This server does not connect to MCP servers at {host!r} (--mcp-hosts).")

    async def list_tools(self, command: ListMcpTools) -> AsyncIterator[object]:
        try:
            async with asyncio.timeout(self.timeout_s):
                listed = await self._exchange(command.server, _all_tools)
        except BaseException as exc:
            yield McpToolsListed(command.job_id, error=_error(exc, self.timeout_s, command.server))
            return
        tools = tuple(
            McpToolInfo(
                name=tool.name,
                input_schema=dict(tool.input_schema or {"type": "object", "properties": {}}),
                description=tool.description,
                annotations=tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None,
            )
            for tool in listed
        )
        yield McpToolsListed(command.job_id, tools=tools)

    async def call_tool(self, command: CallMcpTool) -> AsyncIterator[object]:
        try:
            arguments = json.loads(command.arguments or "{}")
        except json.JSONDecodeError as exc:
            yield McpToolCalled(command.job_id, error=tool_error(f"The arguments are not JSON: {exc.msg}."))
            return
        if not isinstance(arguments, dict):
            yield McpToolCalled(command.job_id, error=tool_error("The arguments must be a JSON object."))
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await self._exchange(command.server, lambda c: c.call_tool(command.name, arguments))
        except BaseException as exc:
            yield McpToolCalled(command.job_id, error=_error(exc, self.timeout_s, command.server))
            return
        text = _text(result)
        if result.is_error:
            yield McpToolCalled(command.job_id, error=tool_error(text or "The tool failed."))
        else:
            yield McpToolCalled(command.job_id, output=text)

    async def _exchange(self, server: McpServer, request: Any) -> Any:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        self._check(server.url)
        statuses: list[int] = []

        async def record(response: Any) -> None:
            if response.status_code >= 400:
                statuses.append(response.status_code)

        http = create_mcp_http_client(headers=dict(server.headers))
        http.event_hooks = {"response": [record]}
        try:
            async with http:
                transport = streamable_http_client(server.url, http_client=http)
                async with Client(transport, read_timeout_seconds=self.timeout_s, cache=None, mode="legacy") as client:
                    return await request(client)
        except Exception as exc:
            # The SDK turns an HTTP error status into a JSON-RPC error: report the status, as OpenAI does.
            if statuses:
                raise _HttpStatus(statuses[0]) from exc
            raise


async def _all_tools(client: Any) -> list[Any]:
    """Every page of the server's tools, up to ``MAX_PAGES``."""
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _text(result: Any) -> str:
    """A tool result as the model reads it: its text parts, else its structured content as JSON."""
    parts = [getattr(part, "text", None) for part in result.content or []]
    text = "\n".join(p for p in parts if p)
    if not text and getattr(result, "structured_content", None) is not None:
        text = json.dumps(result.structured_content)
    return text[:MAX_OUTPUT_CHARS]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _error(exc: BaseException, timeout_s: float, server: McpServer) -> dict[str, Any]:
    """What went wrong, as an ``mcp_call`` error (the first cause found in an exception group)."""
    if isinstance(exc, asyncio.CancelledError):
        raise exc  # the job was cancelled: not an answer
    from mcp.shared.exceptions import MCPError

    leaves = _leaves(exc)
    log.info("MCP server %r failed: %s", server.label, "; ".join(type(e).__name__ for e in leaves))
    for leaf in leaves:
        if isinstance(leaf, _HttpStatus):
            return http_error(leaf.status, str(leaf))
        if isinstance(leaf, TimeoutError):
            return http_error(504, f"The MCP server did not answer within {timeout_s:g} s.")
        if isinstance(leaf, MCPError):
            return protocol_error(int(getattr(leaf, "code", -32603)), str(leaf))
        status = getattr(getattr(leaf, "response", None), "status_code", None)
        if isinstance(status, int):
            return http_error(status, f"The MCP server answered HTTP {status}.")
    first = leaves[0] if leaves else exc
    return http_error(UNREACHABLE, f"The MCP server could not be reached: {type(first).__name__}: {first}")
