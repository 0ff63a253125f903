"""MCP tools: which tools are allowed and which need approval, the configs refused, and the pieces."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import SessionKind, parse_client_event
from openrealtime.protocol.config import McpTool
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.mcp import McpServers, allowed, needs_approval, server_of
from openrealtime.session.mcp_commands import McpServer, McpToolInfo, McpToolsListed
from tests.session.mcp_fakes import DELETE, WEATHER, mcp_tool


def config(**fields: Any) -> McpTool:
    return McpTool.model_validate(mcp_tool(**fields))


@pytest.mark.parametrize(
    ("rule", "weather", "delete"),
    [
        (None, True, True),
        (["get_weather"], True, False),
        ({"read_only": True}, True, False),
        ({"tool_names": ["delete_all"], "read_only": False}, False, True),
        ({}, True, True),
    ],
)
def test_allowed_tools(rule: Any, weather: bool, delete: bool) -> None:
    assert (allowed(config(allowed_tools=rule), WEATHER), allowed(config(allowed_tools=rule), DELETE)) == (
        weather,
        delete,
    )


@pytest.mark.parametrize(
    ("rule", "weather", "delete"),
    [
        (None, True, True),  # OpenAI's default: always
        ("always", True, True),
        ("never", False, False),
        ({"never": {"read_only": True}}, False, True),
        ({"never": {"tool_names": ["get_weather"], "read_only": False}}, True, True),
        ({"always": {"tool_names": ["delete_all"]}}, True, True),
        ({"never": {}}, True, True),
    ],
)
def test_require_approval(rule: Any, weather: bool, delete: bool) -> None:
    tool = config(require_approval=rule)
    assert (needs_approval(tool, WEATHER), needs_approval(tool, DELETE)) == (weather, delete)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"tunnel_id": "tun_1"}, "Secure MCP Tunnels"),
        ({"server_url": "ftp://x/mcp"}, "http:// or https://"),
        ({"defer_loading": True}, "defer_loading"),
        ({"allowed_callers": ["programmatic"]}, "'direct'"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(fields: dict[str, Any], words: str) -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "tools": [mcp_tool(**fields)]}}
    with pytest.raises(ProtocolError) as refused:
        parse_client_event(json.dumps(event), SessionKind.REALTIME)
    assert refused.value.code == "invalid_value"
    assert words in refused.value.message


def test_the_server_gets_the_headers_and_a_bearer_token_and_never_shows_them() -> None:
    server = server_of(config(headers={"X-Team": "voice"}, authorization="tok"))
    assert server.headers == (("Authorization", "Bearer tok"), ("X-Team", "voice"))
    assert "tok" not in repr(server)
    assert "voice" not in repr(server)


def test_a_tool_as_the_list_item_shows_it() -> None:
    assert WEATHER.wire() == {
        "name": "get_weather",
        "input_schema": WEATHER.input_schema,
        "description": "Weather for a city.",
        "annotations": {"readOnlyHint": True},
    }
    assert McpToolInfo("x", {}).wire() == {"name": "x", "input_schema": {}}


def test_a_stale_listing_and_unknown_approval_requests_are_ignored() -> None:
    conversation = Conversation()
    servers = McpServers(Ids(deterministic=True), conversation)
    first = next(o for o in servers.configure([config()]) if hasattr(o, "job_id"))
    second = next(o for o in servers.configure([config(allowed_tools=["get_weather"])]) if hasattr(o, "job_id"))
    assert servers.on_listed(McpToolsListed(first.job_id, tools=(WEATHER,))) == []  # replaced meanwhile
    assert servers.on_listed(McpToolsListed(second.job_id, tools=(WEATHER, DELETE))) != []
    assert servers.request("nope") is None
    conversation.add(Entry(item={"id": "m1", "type": "message", "role": "user", "content": []}))
    assert servers.request("m1") is None
    request = {"id": "r1", "type": "mcp_approval_request", "server_label": "docs", "name": "gone", "arguments": "{}"}
    conversation.add(Entry(item=request))
    assert servers.request("r1") is None  # the server no longer lists that tool
    assert McpServer("x", "http://x").label == "x"
