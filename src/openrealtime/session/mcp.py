"""MCP tools of a realtime session: which servers are configured, what they list, what needs approval.

OpenAI's Realtime API calls remote MCP servers itself, and so does this server (reference 9.1,
``tools[].type: "mcp"``). When a session (or a response) names an MCP server, :class:`McpServers`
adds an ``mcp_list_tools`` item to the conversation, sends ``mcp_list_tools.in_progress`` and asks the
runtime for the list (:class:`~openrealtime.session.mcp_commands.ListMcpTools`); the answer fills the
item (``allowed_tools`` applied) and sends ``mcp_list_tools.completed``, or ``.failed`` for a server that
did not answer, after which the session goes on without its tools. A response that may use a server
still being listed waits for the list, as one waits for its user's transcript.

The model sees an MCP server's tools as function tools (name, description, schema), by their own
names; a name already taken by a function tool or by an earlier server is left out. When it calls
one, the response writes an ``mcp_call`` item and the runtime calls the server
(:mod:`openrealtime.session.mcp_calls`), unless ``require_approval`` says the client must approve it
first: then the response ends with an ``mcp_approval_request`` item, and the client's
``mcp_approval_response`` lets the next response make the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openrealtime.contracts import ToolSpec
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import FunctionTool, McpApprovalFilter, McpTool, McpToolFilter
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.mcp_commands import ListMcpTools, McpServer, McpToolInfo, McpToolsListed
from openrealtime.session.signals import Output


@dataclass(frozen=True)
class McpBinding:
    """A tool the model may call, and the server that runs it."""

    server: McpServer
    tool: McpToolInfo
    approval: bool  # the client approves each call first


@dataclass
class _Listing:
    config: McpTool
    server: McpServer
    entry: Entry
    job_id: str | None  # set while the list is being fetched
    tools: list[McpToolInfo] = field(default_factory=list)


def server_of(config: McpTool) -> McpServer:
    headers = dict(config.headers or {})
    if config.authorization:
        headers["Authorization"] = f"Bearer {config.authorization}"
    return McpServer(label=config.server_label, url=config.server_url or "", headers=tuple(sorted(headers.items())))


def _matches(rule: McpToolFilter | None, tool: McpToolInfo) -> bool:
    if rule is None or (rule.tool_names is None and rule.read_only is None):
        return False
    if rule.tool_names is not None and tool.name not in rule.tool_names:
        return False
    return rule.read_only is None or rule.read_only == tool.read_only


def allowed(config: McpTool, tool: McpToolInfo) -> bool:
    """``allowed_tools``: a list of names, or a filter (names and/or ``read_only``); unset, all."""
    rule = config.allowed_tools
    if rule is None:
        return True
    if isinstance(rule, list):
        return tool.name in rule
    return (rule.tool_names is None or tool.name in rule.tool_names) and (
        rule.read_only is None or rule.read_only == tool.read_only
    )


def needs_approval(config: McpTool, tool: McpToolInfo) -> bool:
    """``require_approval``: ``"always"`` (OpenAI's default), ``"never"``, or a filter: the tools its
    ``never`` rule matches are called at once, every other tool is approved first."""
    rule = config.require_approval
    if rule is None or rule == "always":
        return True
    if rule == "never":
        return False
    assert isinstance(rule, McpApprovalFilter)
    return not _matches(rule.never, tool)


class McpServers:
    """The MCP servers one session has listed, by label."""

    def __init__(self, ids: Ids, conversation: Conversation) -> None:
        self._ids = ids
        self._conversation = conversation
        self._servers: dict[str, _Listing] = {}
        self._jobs: dict[str, str] = {}  # listing job -> label
        self.answered: set[str] = set()  # approval requests whose answer was acted on

    def configure(self, tools: list[Any]) -> list[Output]:
        """List each MCP server of ``tools`` not listed yet with this configuration."""
        out: list[Output] = []
        for config in tools:
            if not isinstance(config, McpTool):
                continue
            known = self._servers.get(config.server_label)
            if known is not None and known.config == config:
                continue
            if known is not None and known.job_id is not None:
                self._jobs.pop(known.job_id, None)
            entry = Entry(item={"id": self._ids.new("item"), "type": "mcp_list_tools"})
            entry.item.update(server_label=config.server_label, tools=[])
            job_id = self._ids.new("job")
            listing = _Listing(config=config, server=server_of(config), entry=entry, job_id=job_id)
            self._servers[config.server_label] = listing
            self._jobs[job_id] = config.server_label
            out.append(self._conversation.added(entry))
            out.append(se.McpListToolsInProgress(item_id=entry.id))
            out.append(ListMcpTools(job_id=job_id, server=listing.server))
        return out

    def on_listed(self, result: McpToolsListed) -> list[Output]:
        label = self._jobs.pop(result.job_id, None)
        listing = self._servers.get(label or "")
        if listing is None or listing.job_id != result.job_id:
            return []
        listing.job_id = None
        entry = listing.entry
        if result.error is not None:
            return [se.McpListToolsFailed(item_id=entry.id), self._conversation.done(entry)]
        listing.tools = [t for t in result.tools if allowed(listing.config, t)]
        entry.item["tools"] = [t.wire() for t in listing.tools]
        return [se.McpListToolsCompleted(item_id=entry.id), self._conversation.done(entry)]

    def listing(self, tools: list[Any]) -> bool:
        """Whether a server among ``tools`` is still being listed."""
        return any(
            isinstance(t, McpTool) and (s := self._servers.get(t.server_label)) is not None and s.job_id is not None
            for t in tools
        )

    def bindings(self, tools: list[Any]) -> dict[str, McpBinding]:
        """The MCP tools the model may call among ``tools``, by the name it calls them."""
        taken = {t.name for t in tools if isinstance(t, FunctionTool)}
        out: dict[str, McpBinding] = {}
        for config in tools:
            listing = self._servers.get(config.server_label) if isinstance(config, McpTool) else None
            if listing is None or listing.config != config:
                continue
            for tool in listing.tools:
                if tool.name not in taken and tool.name not in out:
                    out[tool.name] = McpBinding(listing.server, tool, needs_approval(config, tool))
        return out

    def unanswered(self, entries: list[Entry]) -> bool:
        """Whether ``entries`` hold an answer to an approval request not acted on yet."""
        return any(
            e.item.get("type") == "mcp_approval_response" and e.item.get("approval_request_id") not in self.answered
            for e in entries
        )

    def approved(self, entries: list[Entry]) -> list[tuple[Entry, McpBinding]]:
        """The calls the client approved in ``entries`` and no response has made yet (each answer,
        approval or not, is acted on once)."""
        out: list[tuple[Entry, McpBinding]] = []
        for entry in entries:
            item = entry.item
            if item.get("type") != "mcp_approval_response" or item.get("approval_request_id") in self.answered:
                continue
            self.answered.add(str(item["approval_request_id"]))
            found = self.request(str(item["approval_request_id"])) if item.get("approve") else None
            if found is not None:
                out.append(found)
        return out

    def request(self, request_id: str) -> tuple[Entry, McpBinding] | None:
        """An approval request of the conversation, with the tool it would call."""
        entry = self._conversation.get(request_id)
        if entry is None or entry.item.get("type") != "mcp_approval_request":
            return None
        listing = self._servers.get(str(entry.item.get("server_label")))
        tool = next((t for t in listing.tools if t.name == entry.item.get("name")), None) if listing else None
        if listing is None or tool is None:
            return None
        return entry, McpBinding(listing.server, tool, approval=False)


def tool_specs(bindings: dict[str, McpBinding]) -> list[ToolSpec]:
    return [ToolSpec(name, b.tool.description or "", b.tool.input_schema) for name, b in bindings.items()]
