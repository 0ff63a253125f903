"""What a session asks of MCP servers, and what comes back: network I/O kept out of the session.

The session (sans-I/O) never talks to an MCP server. It emits :class:`ListMcpTools` when a server is
configured and :class:`CallMcpTool` when the model calls one of its tools; the runtime
(:mod:`openrealtime.runtime.mcp_client`) does the streamable-HTTP exchange, under a timeout, and
answers with :class:`McpToolsListed` or :class:`McpToolCalled`, by job id like every engine result.
A failure is an answer too (``error``, in the shape of OpenAI's ``mcp_call`` item errors), never an
exception: an unreachable server fails its listing or its call, and the session goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class McpServer:
    """Where an MCP server is and what to send it: its URL, and the headers (``authorization`` as a
    bearer token among them). Never logged: the headers are the client's secrets."""

    label: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        return f"McpServer(label={self.label!r}, url=<{len(self.url)} chars>, headers=<{len(self.headers)}>)"


@dataclass(frozen=True)
class McpToolInfo:
    """One tool a server lists: the fields of OpenAI's ``mcp_list_tools`` item."""

    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    annotations: dict[str, Any] | None = None

    @property
    def read_only(self) -> bool:
        return bool((self.annotations or {}).get("readOnlyHint"))

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "input_schema": self.input_schema}
        if self.description is not None:
            out["description"] = self.description
        if self.annotations is not None:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True)
class ListMcpTools:
    """List the tools of ``server``."""

    job_id: str
    server: McpServer


@dataclass(frozen=True)
class CallMcpTool:
    """Call ``name`` on ``server`` with ``arguments`` (the JSON the model wrote)."""

    job_id: str
    server: McpServer
    name: str
    arguments: str


@dataclass(frozen=True)
class McpToolsListed:
    """Result: the server's tools, or ``error`` (``{"type": "http_error" | "protocol_error", ...}``)."""

    job_id: str
    tools: tuple[McpToolInfo, ...] = ()
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class McpToolCalled:
    """Result: the tool's output (its text content), or ``error`` as the ``mcp_call`` item carries it
    (``protocol_error``, ``tool_execution_error`` or ``http_error``)."""

    job_id: str
    output: str | None = None
    error: dict[str, Any] | None = None


def http_error(code: int, message: str) -> dict[str, Any]:
    return {"type": "http_error", "code": code, "message": message}


def protocol_error(code: int, message: str) -> dict[str, Any]:
    return {"type": "protocol_error", "code": code, "message": message}


def tool_error(message: str) -> dict[str, Any]:
    return {"type": "tool_execution_error", "message": message}
