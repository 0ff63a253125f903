"""The runtime's MCP client against a real MCP server on loopback (the ``mcp`` SDK's own server)."""

from __future__ import annotations

from typing import Any

from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.mcp_client import McpClient, allowed_hosts
from openrealtime.session.mcp_commands import CallMcpTool, ListMcpTools, McpServer, McpToolCalled, McpToolsListed
from tests.mcp_server import closed_port_url, running_mcp_server


async def _one(results: Any) -> Any:
    [result] = [r async for r in results]
    return result


async def test_it_lists_and_calls_tools_with_the_clients_headers() -> None:
    async with running_mcp_server(token="tok") as (url, guard):
        server = McpServer("w", url, headers=(("Authorization", "Bearer tok"), ("X-Team", "voice")))
        client = McpClient(timeout_s=10)
        listed = await _one(client.list_tools(ListMcpTools("j1", server)))
        assert isinstance(listed, McpToolsListed)
        assert listed.error is None
        weather = next(t for t in listed.tools if t.name == "get_weather")
        assert weather.read_only
        assert weather.description == "The current weather in a city."
        assert weather.input_schema["properties"]["city"]["type"] == "string"
        called = await _one(client.call_tool(CallMcpTool("j2", server, "get_weather", '{"city": "Oslo"}')))
        assert called == McpToolCalled("j2", output="Sunny in Oslo, 21 degrees.")
        assert all(h["x-team"] == "voice" for h in guard.headers)


async def test_failures_become_openais_mcp_errors() -> None:
    async with running_mcp_server(token="tok") as (url, _):
        client = McpClient(timeout_s=2)
        good = McpServer("w", url, headers=(("Authorization", "Bearer tok"),))
        failed = await _one(client.call_tool(CallMcpTool("j", good, "fail", "{}")))
        assert failed.error["type"] == "tool_execution_error"
        unknown = await _one(client.call_tool(CallMcpTool("j", good, "nope", "{}")))
        assert unknown.error["type"] in ("tool_execution_error", "protocol_error")
        bad_json = await _one(client.call_tool(CallMcpTool("j", good, "get_weather", "{city")))
        assert bad_json.error["type"] == "tool_execution_error"
        slow = await _one(client.call_tool(CallMcpTool("j", good, "slow", '{"seconds": 5}')))
        assert slow.error == {"type": "http_error", "code": 504, "message": "The MCP server did not answer within 2 s."}
        refused = await _one(client.list_tools(ListMcpTools("j", McpServer("w", url))))
        assert refused.error["type"] == "http_error"
        assert refused.error["code"] == 401
    down = await _one(McpClient(timeout_s=2).list_tools(ListMcpTools("j", McpServer("w", closed_port_url()))))
    assert down.error["type"] == "http_error"
    assert "could not be reached" in down.error["message"]


async def test_the_engine_set_runs_mcp_commands(fake_engines: EngineSet) -> None:
    results = fake_engines.run_job(ListMcpTools("j", McpServer("w", closed_port_url())))
    assert results is not None
    assert (await _one(results)).error is not None


def test_the_mcp_hosts_setting() -> None:
    assert allowed_hosts("*") is None
    assert allowed_hosts("none") == frozenset()
    assert allowed_hosts("") == frozenset()
    assert allowed_hosts("MCP.example.com, 127.0.0.1:8931") == {"mcp.example.com", "127.0.0.1:8931"}


async def test_a_server_at_a_host_not_allowed_is_never_contacted() -> None:
    async with running_mcp_server() as (url, guard):
        port = url.split(":")[2].split("/")[0]
        server = McpServer("w", url)
        refused = await _one(
            McpClient(allowed_hosts=frozenset({"mcp.example.com"})).list_tools(ListMcpTools("j", server))
        )
        assert refused.error == {
            "type": "http_error",
            "code": 403,
            "message": "This server does not connect to MCP servers at '127.0.0.1' (--mcp-hosts).",
        }
        assert guard.headers == []
        by_port = McpClient(allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
        assert (await _one(by_port.list_tools(ListMcpTools("j", server)))).error is None
        assert (
            await _one(McpClient(allowed_hosts=frozenset({"127.0.0.1"})).list_tools(ListMcpTools("j", server)))
        ).tools
