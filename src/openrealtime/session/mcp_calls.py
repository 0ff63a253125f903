"""The MCP calls of one response: their items and events, in OpenAI's order (reference 5.5).

When the model calls a tool of an MCP server (:mod:`openrealtime.session.mcp`), the response gets an
``mcp_call`` item and streams its arguments (``response.mcp_call_arguments.delta`` / ``.done``). At the
end of the LLM's round each call starts (``response.mcp_call.in_progress`` and a
:class:`~openrealtime.session.mcp_commands.CallMcpTool` for the runtime); its answer fills the item's
``output`` or ``error`` (``response.mcp_call.completed`` / ``.failed``, then the item done). A tool that
needs the client's approval gets an ``mcp_approval_request`` item instead, and is not called.

:class:`McpCalls` only writes; :class:`~openrealtime.session.responses.ResponseWriter` decides, when
the round's calls are all answered, whether the model goes on (it does, with the results in its
context, as OpenAI's does) or the response ends.
"""

from __future__ import annotations

from typing import Any

from openrealtime.protocol import server_events as se
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.mcp import McpBinding
from openrealtime.session.mcp_commands import CallMcpTool, McpToolCalled
from openrealtime.session.response import Call, Response
from openrealtime.session.signals import Output

# LLM rounds one response may take: after this many it must answer without calling a tool.
MAX_ROUNDS = 4


class McpCalls:
    """Writes the MCP items of every response of one session."""

    def __init__(self, ids: Ids, conversation: Conversation) -> None:
        self._ids = ids
        self._conversation = conversation

    def open(self, response: Response, key: int, binding: McpBinding, *, approval_for: str | None = None) -> Call:
        """A new call of ``binding``'s tool: an ``mcp_call`` item, or an ``mcp_approval_request`` if
        the client must approve it first. Its ``output_item.added`` is :meth:`added`."""
        kind = "mcp_approval_request" if binding.approval else "mcp_call"
        item: dict[str, Any] = {"id": self._ids.new("item"), "type": kind, "server_label": binding.server.label}
        item.update(name=binding.tool.name, arguments="")
        if approval_for is not None:
            item["approval_request_id"] = approval_for
        call = Call(entry=Entry(item=item), output_index=len(response.output), mcp=binding)
        response.calls[key] = call
        response.output.append(call.entry)
        return call

    def added(self, response: Response, call: Call) -> list[Output]:
        out: list[Output] = [
            se.OutputItemAdded(response_id=response.id, output_index=call.output_index, item=call.entry.item)
        ]
        if response.in_conversation:
            out.append(self._conversation.added(call.entry))
        return out

    def call_approved(
        self, response: Response, approved: list[tuple[Entry, McpBinding]], jobs: dict[str, Response]
    ) -> list[Output]:
        """Make the calls the client approved (``mcp_approval_response``) before the model's round;
        once they are answered the model goes on, as after a round that made them."""
        out: list[Output] = []
        for request, binding in approved:
            call = self.open(response, len(response.calls), binding, approval_for=request.id)
            call.arguments = str(request.item.get("arguments") or "{}")
            out += self.added(response, call)
        response.call_base = len(response.calls) - len(approved)
        response.llm_done = True
        return out + self.start(response, jobs)

    def delta(self, response: Response, call: Call, text: str) -> list[Output]:
        call.arguments += text
        if call.entry.item["type"] != "mcp_call" or not text:
            return []  # an approval request's arguments go out whole, with its item
        return [
            se.McpCallArgumentsDelta(
                response_id=response.id, item_id=call.entry.id, output_index=call.output_index, delta=text
            )
        ]

    def start(self, response: Response, jobs: dict[str, Response]) -> list[Output]:
        """The round's LLM is done: close its approval requests, start its calls."""
        out: list[Output] = []
        for call in pending(response):
            item = call.entry.item
            item["arguments"] = call.arguments or "{}"
            if item["type"] == "mcp_approval_request":
                out += self.close(response, call)
                continue
            assert call.mcp is not None
            call.job_id = self._ids.new("job")
            jobs[call.job_id] = response
            ids: dict[str, Any] = {"item_id": call.entry.id, "output_index": call.output_index}
            out.append(se.McpCallArgumentsDone(response_id=response.id, arguments=item["arguments"], **ids))
            out.append(se.McpCallInProgress(**ids))
            server, name = call.mcp.server, call.mcp.tool.name
            out.append(CallMcpTool(job_id=call.job_id, server=server, name=name, arguments=item["arguments"]))
        return out

    def on_called(self, response: Response, result: McpToolCalled) -> list[Output]:
        call = next((c for c in response.calls.values() if c.job_id == result.job_id), None)
        if call is None:
            return []
        call.job_id = None
        ids: dict[str, Any] = {"item_id": call.entry.id, "output_index": call.output_index}
        if result.error is not None:
            call.entry.item["error"] = result.error
            return [se.McpCallFailed(**ids), *self.close(response, call)]
        call.entry.item["output"] = result.output or ""
        return [se.McpCallCompleted(**ids), *self.close(response, call)]

    def close(self, response: Response, call: Call) -> list[Output]:
        """The item done: in the conversation, then in the response."""
        if call.closed:
            return []
        call.closed = True
        call.entry.item.setdefault("arguments", call.arguments)
        out: list[Output] = []
        if response.in_conversation and self._conversation.get(call.entry.id) is not None:
            out.append(self._conversation.done(call.entry))
        out.append(se.OutputItemDone(response_id=response.id, output_index=call.output_index, item=call.entry.item))
        return out


def pending(response: Response) -> list[Call]:
    """MCP calls and approval requests of the round under way that have not started."""
    return [
        call
        for key, call in response.calls.items()
        if key >= response.call_base and call.mcp is not None and call.job_id is None and not call.closed
    ]


def running(response: Response) -> bool:
    return any(call.job_id is not None for call in response.calls.values())


def goes_on(response: Response) -> bool:
    """Whether the model takes another round once its MCP calls are answered: only after a round that
    made MCP calls and nothing the client must act on (a function call, an approval request)."""
    calls = [c for key, c in response.calls.items() if key >= response.call_base]
    made = [c for c in calls if c.entry.item["type"] == "mcp_call"]
    return bool(made) and len(made) == len(calls) and response.rounds < MAX_ROUNDS
