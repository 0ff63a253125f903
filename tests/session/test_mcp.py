"""MCP tools in a realtime session (issue 12): listing, calls the server makes, approvals, failures."""

from __future__ import annotations

import json
from typing import Any

from openrealtime.engines.fake import FakeChatModel
from openrealtime.session.mcp_commands import CallMcpTool
from tests.conftest import quiet, tone
from tests.session.mcp_fakes import FakeMcp, make, mcp_tool


def _update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **session}}


def _ask(driver: Any, text: str = "Weather in Paris?", **response: Any) -> list[dict[str, Any]]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    driver.send({"type": "conversation.item.create", "item": item})
    return driver.send({"type": "response.create", **({"response": response} if response else {})})


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_configuring_a_server_lists_its_tools_into_an_item() -> None:
    _, driver = make()
    events = driver.send(_update(tools=[mcp_tool(allowed_tools=["get_weather"])]))
    assert types(events) == [
        "session.updated",
        "conversation.item.added",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "conversation.item.done",
    ]
    assert events[0]["session"]["tools"] == [mcp_tool(allowed_tools=["get_weather"])]
    item = events[-1]["item"]
    assert item["type"] == "mcp_list_tools"
    assert item["server_label"] == "docs"
    assert [t["name"] for t in item["tools"]] == ["get_weather"]  # allowed_tools applied
    assert {e["item_id"] for e in events[2:4]} == {item["id"]}
    assert driver.send(_update(instructions="Be terse.")) == [driver.events[-1]]  # same config: not listed again


def test_an_unreachable_server_fails_its_listing_and_the_session_goes_on() -> None:
    _, driver = make(FakeMcp(reachable=False))
    events = driver.send(_update(tools=[mcp_tool()]))
    assert "mcp_list_tools.failed" in types(events)
    answer = _ask(driver)
    assert types(answer)[-2:] == ["response.done", "rate_limits.updated"]
    assert answer[-2]["response"]["status"] == "completed"


def test_the_model_calls_a_tool_the_server_runs_and_then_answers_with_its_result() -> None:
    chat = FakeChatModel("It is sunny in Paris.")
    _, driver = make(chat=chat)
    driver.send(_update(tools=[mcp_tool(require_approval="never")], tool_choice="required", output_modalities=["text"]))
    events = _ask(driver)
    kinds = types(events)
    call_events = [
        "response.output_item.added",
        "conversation.item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "conversation.item.done",
        "response.output_item.done",
    ]
    start = kinds.index("response.output_item.added")
    assert kinds[start : start + len(call_events)] == call_events
    assert driver.mcp.calls[0].name == "get_weather"
    done = events[-2]["response"]
    assert done["status"] == "completed"
    call, message = done["output"]
    assert call["type"] == "mcp_call"
    assert call["output"] == "Sunny, 21 C"
    assert call["server_label"] == "docs"
    assert message["content"][0]["text"] == "It is sunny in Paris."
    # The second round saw the MCP tools as function tools, and the call and its result as a tool turn.
    first, second = chat.requests[-2:]
    assert [t.name for t in first.tools] == ["get_weather", "delete_all"]
    assert second.tool_choice == "auto"
    assert second.messages[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert second.messages[-1] == {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"}


def test_a_failing_call_gets_mcp_call_failed_and_an_item_with_its_error() -> None:
    mcp = FakeMcp()
    mcp.outputs = {}
    _, driver = make(mcp)
    driver.send(_update(tools=[mcp_tool(require_approval="never")], tool_choice="required"))
    events = _ask(driver, output_modalities=["text"])
    assert "response.mcp_call.failed" in types(events)
    call = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert call["error"] == {"type": "tool_execution_error", "message": "get_weather failed"}
    assert events[-2]["response"]["status"] == "completed"


def test_approval_ends_the_response_and_the_approved_call_is_made_by_the_next() -> None:
    _, driver = make()
    driver.send(_update(tools=[mcp_tool()], tool_choice="required", output_modalities=["text"]))  # always
    events = _ask(driver)
    request = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert request["type"] == "mcp_approval_request"
    assert request["name"] == "get_weather"
    assert json.loads(request["arguments"]) == {}
    assert events[-2]["response"]["status"] == "completed"
    assert driver.mcp.calls == []
    approval = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
    driver.send({"type": "conversation.item.create", "item": approval})
    events = driver.send({"type": "response.create"})
    assert types(events)[:3] == ["response.created", "response.output_item.added", "conversation.item.added"]
    call = events[1]["item"]
    assert call["type"] == "mcp_call"
    assert call["approval_request_id"] == request["id"]
    assert [c.name for c in driver.mcp.calls] == ["get_weather"]
    output = events[-2]["response"]["output"]
    assert [o["type"] for o in output] == ["mcp_call", "message"]
    driver.send({"type": "response.create"})
    assert len(driver.mcp.calls) == 1  # an answer is acted on once


def test_a_denied_call_is_not_made_and_the_model_is_told() -> None:
    chat = FakeChatModel("Fine.")
    _, driver = make(chat=chat)
    driver.send(_update(tools=[mcp_tool()], tool_choice="required", output_modalities=["text"]))
    events = _ask(driver)
    request = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    denial = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": False}
    driver.send({"type": "conversation.item.create", "item": {**denial, "reason": "no"}})
    driver.send(_update(tool_choice="auto"))
    driver.send({"type": "response.create"})
    assert driver.mcp.calls == []
    assert chat.requests[-1].messages[-1] == {
        "role": "user",
        "content": "I declined that tool call (no); do not make it.",
    }


def test_require_approval_filter_exempts_the_tools_never_names() -> None:
    _, driver = make()
    never = {"never": {"tool_names": ["get_weather"]}}
    driver.send(
        _update(
            tools=[mcp_tool(require_approval=never)],
            tool_choice={"type": "mcp", "server_label": "docs", "name": "delete_all"},
        )
    )
    events = _ask(driver, output_modalities=["text"])
    assert next(e["item"]["type"] for e in events if e["type"] == "response.output_item.done") == "mcp_approval_request"
    driver.send(_update(tool_choice={"type": "mcp", "server_label": "docs", "name": "get_weather"}))
    events = _ask(driver, output_modalities=["text"])
    assert "response.mcp_call.completed" in types(events)


def test_a_response_waits_for_its_servers_tools_and_a_cancel_stops_a_call() -> None:
    _, driver = make(hold_mcp=True)
    driver.send(_update(tools=[mcp_tool(require_approval="never")], tool_choice="required"))
    events = _ask(driver, output_modalities=["text"])
    assert types(events) == ["response.created"]  # no LLM round before the server's tools are listed
    events = driver.release()  # the list arrives: the model calls the tool, whose call is held
    assert "response.mcp_call.in_progress" in types(events)
    [call] = driver.held_mcp
    assert isinstance(call, CallMcpTool)
    events = driver.send({"type": "response.cancel"})
    assert call.job_id in driver.cancelled
    assert events[-2]["response"]["status"] == "cancelled"
    assert driver.release() == []  # its late answer is dropped by id


def test_a_response_level_mcp_tool_is_listed_for_it() -> None:
    _, driver = make()
    events = _ask(
        driver, tools=[mcp_tool(require_approval="never")], tool_choice="required", output_modalities=["text"]
    )
    assert "mcp_list_tools.completed" in types(events)
    assert "response.mcp_call.completed" in types(events)


def test_refused_mcp_fields_are_refused_by_name() -> None:
    _, driver = make()
    [error] = driver.send(_update(tools=[mcp_tool(connector_id="connector_gmail")]))
    assert error["type"] == "error"
    assert "connectors" in error["error"]["message"]
    assert error["error"]["param"] == "session.tools[0]"
    [error] = driver.send(_update(tools=[{"type": "mcp", "server_label": "x"}]))
    assert "server_url" in error["error"]["message"]


def test_a_spoken_turn_answered_in_its_pause_calls_the_mcp_tool() -> None:
    chat = FakeChatModel("Sunny.")
    _, driver = make(chat=chat)
    vad = {"type": "server_vad", "silence_duration_ms": 500}
    tools = [mcp_tool(require_approval="never")]
    driver.send(_update(tools=tools, tool_choice="required", audio={"input": {"turn_detection": vad}}))
    driver.append(tone(2200))
    assert driver.append(quiet(200)) is not None  # the pause: the answer starts, unseen
    assert [t.name for t in chat.requests[-1].tools] == ["get_weather", "delete_all"]
    events = driver.append(quiet(600))
    assert "response.mcp_call.completed" in types(events)
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert [o["type"] for o in done["output"]] == ["mcp_call", "message"]


def test_two_servers_with_one_label_are_refused() -> None:
    _, driver = make()
    [error] = driver.send(_update(tools=[mcp_tool(), mcp_tool(server_url="http://other.test/mcp")]))
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.tools"
    assert "server_label of its own" in error["error"]["message"]
