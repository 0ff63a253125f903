"""The responses a client asks for (``response.create``, ``response.cancel``) and those a turn
starts, and their requests to the LLM, as a mixin of
:class:`~openrealtime.session.realtime.RealtimeSession` (whose state it uses, through
:class:`_Session`). The events of a response are the writer's
(:class:`~openrealtime.session.responses.ResponseWriter`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from openrealtime.contracts import ChatRequest
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import RealtimeSessionConfig
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.items import no_images
from openrealtime.session.mcp import McpServers
from openrealtime.session.mcp_calls import MAX_ROUNDS
from openrealtime.session.prompting import chat_request, new_response
from openrealtime.session.response import Response
from openrealtime.session.responses import ResponseWriter
from openrealtime.session.signals import Output

if TYPE_CHECKING:
    from collections.abc import Iterable

    from openrealtime.session.realtime import RealtimeInfo
    from openrealtime.session.transcription import SessionInfo

# Responses a session may have in progress at once (issue 10 defect 3: one session's 40 out-of-band
# responses starved every other session). Each holds up to two engine threads (its LLM stream and one
# TTS job), so one session holds at most 6 of the 8 (runtime/engines.py), and the rest take turns.
MAX_RESPONSES_IN_FLIGHT = 3


class _Session(Protocol):
    """What of the realtime session the mixin uses."""

    info: SessionInfo
    rt: RealtimeInfo
    config: RealtimeSessionConfig
    conversation: Conversation
    writer: ResponseWriter
    mcp: McpServers
    _ids: Ids
    _events: list[se.ServerEvent]
    _responses: dict[str, Response]

    @property
    def active_response(self) -> Response | None: ...

    def _take(self, outputs: Iterable[Output]) -> None: ...

    def _respond(self, outputs: list[Output]) -> None: ...

    def _silenced(self, item_id: str | None = None) -> None: ...

    def _start_response(self, response: Response) -> None: ...

    def _maybe_generate(self, response: Response) -> None: ...

    def _chat_request(self, response: Response, entries: list[Entry]) -> ChatRequest: ...


class Responding:
    """Responses begun and cancelled, for :class:`~openrealtime.session.realtime.RealtimeSession`."""

    def _create_response(self: _Session, event: ce.ResponseCreate) -> None:
        inline = event.response.input if event.response is not None and event.response.input else []
        if not self.rt.sees_images and any(
            getattr(part, "type", None) == "input_image"
            for element in inline
            for part in getattr(element, "content", None) or []
        ):
            raise no_images(event.event_id, "response.input")
        response = new_response(self.config, event.response, self.conversation, ids=self._ids, event_id=event.event_id)
        if response.in_conversation and (active := self.active_response) is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {active.id}. Wait "
                "until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event.event_id,
            )
        if len(self._responses) >= MAX_RESPONSES_IN_FLIGHT:
            raise ProtocolError(
                f"This session already has {len(self._responses)} responses in progress, the most it may "
                "have at once. Wait until one is done (response.done) before creating another.",
                code="too_many_active_responses",
                event_id=event.event_id,
            )
        self._start_response(response)

    def _cancel_request(self: _Session, event: ce.ResponseCancel) -> None:
        response = self._responses.get(event.response_id) if event.response_id else self.active_response
        if response is None:
            raise ProtocolError(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                event_id=event.event_id,
            )
        self._respond(self.writer.cancel(response, "client_cancelled"))
        if not self.rt.server_playback and response.message is not None:
            self._silenced(response.message.id)  # a client that cancels an answer stops playing it

    def _start_response(self: _Session, response: Response) -> None:
        self._responses[response.id] = response
        self._events.append(self.writer.created(response))
        self._take(self.mcp.configure(response.tools))  # a response's own MCP servers
        self._maybe_generate(response)

    def _maybe_generate(self: _Session, response: Response) -> None:
        if response.llm_job is not None or response.calls or response.state.finished:
            return  # generating already, or making the MCP calls the client approved
        entries = response.custom_input if response.custom_input is not None else list(self.conversation)
        if any(e.transcript_pending for e in entries) or self.mcp.listing(response.tools):
            return  # the user's words or an MCP server's tools are still coming: generate when they arrive
        response.mcp_tools = self.mcp.bindings(response.tools)
        approved = self.mcp.approved(entries)
        if approved:
            self._respond(self.writer.mcp.call_approved(response, approved, self.writer.jobs))
            return
        self._take(self.writer.generate(response, self._chat_request(response, entries)))

    def _continue(self: _Session, response: Response) -> list[Output]:
        """The next LLM round of a response whose MCP calls are answered: their results in context."""
        entries = response.custom_input if response.custom_input is not None else list(self.conversation)
        if not response.in_conversation:
            entries = [*entries, *response.output]
        response.tool_choice = "none" if response.rounds >= MAX_ROUNDS else "auto"
        return self.writer.generate(response, self._chat_request(response, entries))

    def _chat_request(self: _Session, response: Response, entries: list[Entry]) -> ChatRequest:
        return chat_request(
            response,
            entries,
            self.conversation,
            context_tokens=self.rt.context_tokens,
            truncation=self.config.truncation,
            cache_key=self.info.session_id,
        )
