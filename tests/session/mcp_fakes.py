"""A fake MCP server for session tests, and a driver that answers a session's MCP commands with it."""

from __future__ import annotations

import json
from typing import Any

from openrealtime.session.mcp_commands import (
    CallMcpTool,
    ListMcpTools,
    McpToolCalled,
    McpToolInfo,
    McpToolsListed,
    http_error,
    tool_error,
)
from tests.session import test_realtime
from tests.session.driver import RealtimeDriver

WEATHER = McpToolInfo(
    name="get_weather",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}},
    description="Weather for a city.",
    annotations={"readOnlyHint": True},
)
DELETE = McpToolInfo(name="delete_all", input_schema={"type": "object", "properties": {}}, description="Delete.")


def mcp_tool(**fields: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "docs", "server_url": "http://mcp.test/mcp", **fields}


class FakeMcp:
    """Answers listings with ``tools`` (or an unreachable server's error) and calls with ``outputs``."""

    def __init__(self, tools: tuple[McpToolInfo, ...] = (WEATHER, DELETE), *, reachable: bool = True) -> None:
        self.tools = tools
        self.reachable = reachable
        self.outputs: dict[str, str] = {"get_weather": "Sunny, 21 C"}
        self.calls: list[CallMcpTool] = []
        self.listings: list[ListMcpTools] = []

    def answer(self, command: ListMcpTools | CallMcpTool) -> McpToolsListed | McpToolCalled:
        if isinstance(command, ListMcpTools):
            self.listings.append(command)
            if not self.reachable:
                return McpToolsListed(command.job_id, error=http_error(0, "The MCP server could not be reached."))
            return McpToolsListed(command.job_id, tools=self.tools)
        self.calls.append(command)
        json.loads(command.arguments)
        if command.name not in self.outputs:
            return McpToolCalled(command.job_id, error=tool_error(f"{command.name} failed"))
        return McpToolCalled(command.job_id, output=self.outputs[command.name])


class McpDriver(RealtimeDriver):
    """A realtime driver that also answers MCP commands (at once, or kept in ``held_mcp``)."""

    def __init__(self, session: Any, mcp: FakeMcp | None = None, *, hold_mcp: bool = False, **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self.mcp = mcp or FakeMcp()
        self.hold_mcp = hold_mcp
        self.held_mcp: list[Any] = []
        self._queued: list[Any] = []
        drain = session.drain

        def drain_keeping_mcp() -> Any:
            events, commands = drain()
            self._queued += [c for c in commands if isinstance(c, ListMcpTools | CallMcpTool)]
            return events, [c for c in commands if not isinstance(c, ListMcpTools | CallMcpTool)]

        session.drain = drain_keeping_mcp

    def pump(self) -> list[dict[str, Any]]:
        produced = super().pump()
        while self._queued:
            queued, self._queued = self._queued, []
            if self.hold_mcp:
                self.held_mcp += queued
                break
            for command in queued:
                if command.job_id not in self.cancelled:
                    self.session.on_result(self.mcp.answer(command))
            produced += super().pump()
        return produced

    def release(self) -> list[dict[str, Any]]:
        held, self.held_mcp = self.held_mcp, []
        for command in held:
            self.session.on_result(self.mcp.answer(command))
        return self.pump()


def make(mcp: FakeMcp | None = None, **kwargs: Any) -> tuple[Any, McpDriver]:
    session, _ = test_realtime.make()
    driver = McpDriver(session, mcp, **kwargs)
    return session, driver
