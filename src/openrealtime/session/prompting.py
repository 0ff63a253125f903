"""What a response is asked to be, and what its LLM is sent.

:func:`new_response` resolves a response's parameters: ``response.create``'s own (reference 5.5)
over the session's configuration, including out-of-band input built from item references and inline
items. :func:`chat_request` makes the LLM request: the instructions, the conversation items that fit
the context (``truncation``), the tools, and the session id as the prompt-cache key.
"""

from __future__ import annotations

from typing import Any, Literal

from openrealtime.audio.codec import AudioFormat
from openrealtime.contracts import ChatRequest, ToolSpec
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol.config import (
    FunctionTool,
    McpToolChoice,
    NamedToolChoice,
    RealtimeSessionConfig,
    RetentionRatioTruncation,
)
from openrealtime.protocol.items import ItemReference
from openrealtime.session.conversation import Conversation, Entry, fit_context, fit_retained
from openrealtime.session.ids import Ids
from openrealtime.session.mcp import tool_specs
from openrealtime.session.response import Response
from openrealtime.session.states import ResponseState

# The server's own cap on an answer the client left unbounded ("inf", OpenAI's default): a local model
# must stop somewhere, and 256 tokens are about a minute and a half of speech. The client is told what
# it asked for (max_output_tokens "inf" in response.created / .done); an answer cut here ends
# "incomplete" with reason "max_output_tokens", as one cut at the client's own limit does.
DEFAULT_MAX_TOKENS = 256
OUTPUT_RESERVE_TOKENS = 256
Truncation = Literal["auto", "disabled"] | RetentionRatioTruncation  # a session's ``truncation``
DEFAULT_VOICE = "alloy"


def new_response(
    config: RealtimeSessionConfig,
    params: ce.ResponseCreateParams | None,
    conversation: Conversation,
    *,
    ids: Ids,
    speculative: bool = False,
    event_id: str | None = None,
) -> Response:
    """A response with ``params`` over the session's ``config``; a speculative one gets its id later.

    Raises:
        ProtocolError: ``input`` references an item the conversation does not have.
    """
    c = config
    p = params or ce.ResponseCreateParams()
    tool_choice: Any = p.tool_choice if p.tool_choice is not None else c.tool_choice
    max_tokens = p.max_output_tokens if p.max_output_tokens is not None else c.max_output_tokens
    voice: Any = c.audio.output.voice
    fmt = AudioFormat(c.audio.output.format.type)
    if p.audio and p.audio.output:
        voice = p.audio.output.voice or voice
        if p.audio.output.format:
            fmt = AudioFormat(p.audio.output.format.get("type", fmt.value))
    custom_input = _custom_input(p, conversation, event_id)
    return Response(
        id="" if speculative else ids.new("resp"),
        in_conversation=p.conversation in (None, "auto"),
        modalities=list(p.output_modalities or c.output_modalities),
        voice=voice if isinstance(voice, str) else str(voice.get("id", DEFAULT_VOICE)),
        speed=c.audio.output.speed,
        output_format=fmt,
        instructions=p.instructions if p.instructions is not None else c.instructions,
        tools=list(p.tools if p.tools is not None else c.tools),
        tool_choice=_tool_choice(tool_choice),
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens == "inf" else int(max_tokens),
        max_output_tokens="inf" if max_tokens == "inf" else int(max_tokens),
        metadata=p.metadata,
        custom_input=custom_input,
        state=ResponseState.SPECULATIVE if speculative else ResponseState.IN_PROGRESS,
    )


def _tool_choice(choice: Any) -> str:
    """The LLM's ``tool_choice``: a named function or MCP tool by its name; an MCP server without a
    tool name, any tool (``required``)."""
    if isinstance(choice, NamedToolChoice):
        return choice.name
    if isinstance(choice, McpToolChoice):
        return choice.name or "required"
    return str(choice)


def _custom_input(p: ce.ResponseCreateParams, conversation: Conversation, event_id: str | None) -> list[Entry] | None:
    """Out-of-band input: referenced items of the conversation and inline items, in order."""
    if p.input is None:
        return None
    custom: list[Entry] = []
    for index, element in enumerate(p.input):
        if not isinstance(element, ItemReference):
            custom.append(Entry(item=element.model_dump(mode="json", exclude_none=True)))
            continue
        found = conversation.get(element.id)
        if found is None:
            raise ProtocolError(
                f"Item reference '{element.id}' does not exist.",
                code="invalid_value",
                param=f"response.input[{index}].id",
                event_id=event_id,
            )
        custom.append(found)
    return custom


def chat_request(
    response: Response,
    entries: list[Entry],
    conversation: Conversation,
    *,
    context_tokens: int,
    truncation: Truncation,
    cache_key: str,
) -> ChatRequest:
    """What the LLM gets: the instructions, the items that fit the context (as ``truncation`` says:
    ``disabled`` sends them all, and a conversation too long fails the response), the tools."""
    system = [{"role": "system", "content": response.instructions}] if response.instructions else []
    budget = context_tokens - min(response.max_tokens, OUTPUT_RESERVE_TOKENS)
    if isinstance(truncation, RetentionRatioTruncation):
        limit = (truncation.token_limits or {}).get("post_instructions")
        entries = fit_retained(system, entries, budget, truncation.retention_ratio, limit)
    elif truncation == "auto":
        entries = fit_context(system, entries, budget)
    tools = [ToolSpec(t.name, t.description or "", t.parameters) for t in response.tools if isinstance(t, FunctionTool)]
    tools += tool_specs(response.mcp_tools)
    return ChatRequest(
        messages=system + conversation.chat_messages(entries),
        tools=tools if response.tool_choice != "none" else (),
        tool_choice=response.tool_choice,
        max_tokens=response.max_tokens,
        cache_key=cache_key,
    )
