"""The realtime session's answers begun before the turn has ended, as a mixin of
:class:`~openrealtime.session.realtime.RealtimeSession` (whose state it uses, through :class:`_Session`).

Two head starts, both dropped or superseded for free when the turn goes on:

* **The answer begun in the pause** (:meth:`EarlyAnswers._speculate`): the pause's words are known
  (``TurnMayEnd``) and the turn may end: the answer is generated and its first clause voiced now,
  held back until the turn ends (promoted at the commit) or cancelled if the speaker goes on.
* **The answer's prompt warmed while the user speaks** (:meth:`EarlyAnswers._warm`): each live caption
  with new words (``TurnHeard``: its words but the last) hands them to the LLM (``WarmAnswer``), which evaluates the
  request the answer would have into its cache, so that the answer begun in the pause evaluates only
  the words after them (a prompt token costs 4-8 ms on two cores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from openrealtime.contracts import ChatRequest
from openrealtime.protocol.config import RealtimeSessionConfig
from openrealtime.session.bargein import BargeIn
from openrealtime.session.commands import WarmAnswer
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.mcp import McpServers
from openrealtime.session.prompting import new_response
from openrealtime.session.response import Response
from openrealtime.session.responses import ResponseWriter
from openrealtime.session.signals import Output, TurnHeard, TurnMayEnd

if TYPE_CHECKING:
    from collections.abc import Iterable


class _Session(Protocol):
    """What of the realtime session the mixin uses."""

    config: RealtimeSessionConfig
    writer: ResponseWriter
    conversation: Conversation
    mcp: McpServers
    _ids: Ids
    _barge: BargeIn
    _speculative: Response | None  # the answer begun in the pause, if any
    _speculated_words: str  # the words it answers

    @property
    def active_response(self) -> Response | None: ...

    def _take(self, outputs: Iterable[Output]) -> None: ...

    def _chat_request(self, response: Response, entries: list[Entry]) -> ChatRequest: ...

    def _drop_speculation(self) -> None: ...

    def _may_answer_early(self) -> bool: ...

    def _early_answer(self, words: str) -> tuple[Response, ChatRequest]: ...


class EarlyAnswers:
    """Answers begun or prepared before the turn ends, for
    :class:`~openrealtime.session.realtime.RealtimeSession`."""

    _speculative: Response | None  # set by the session (see _Session)
    _speculated_words: str

    def _speculate(self: _Session, may_end: TurnMayEnd) -> None:
        """The pause may end the turn: start the answer now, so its first audio is ready sooner.

        An answer already begun on the same words of the same turn is kept (a pause after a flicker
        of the VAD heard what the pause before it did: session/flicker.py)."""
        kept = self._speculative
        if kept is not None and kept.answers_turn == may_end.item_id and self._speculated_words == may_end.text:
            return
        self._drop_speculation()
        if not may_end.text.strip() or not self._may_answer_early():
            return
        response, request = self._early_answer(may_end.text)
        response.answers_turn = may_end.item_id
        self._speculative, self._speculated_words = response, may_end.text
        self._take(self.writer.generate(response, request))

    def _warm(self: _Session, heard: TurnHeard) -> None:
        """New words of a turn still spoken: the LLM evaluates the answer's prompt up to them now, so
        the answer begun in the pause evaluates only the words after them."""
        if self._may_answer_early():
            _, request = self._early_answer(heard.text)
            self._take([WarmAnswer(self._ids.new("job"), request)])

    def _drop_speculation(self: _Session) -> None:
        """Cancel the answer started in the pause (the speaker went on, or what it was built on changed)."""
        if self._speculative is not None:
            speculative, self._speculative = self._speculative, None
            self._take(self.writer.drop(speculative))

    def _may_answer_early(self: _Session) -> bool:
        """Whether an answer may be begun (or prepared) before the turn has ended."""
        td = self.config.audio.input.turn_detection
        if td is None or not td.create_response:
            return False
        if self.active_response is not None or any(e.transcript_pending for e in self.conversation):
            return False
        if self._barge.pending is not None:
            return False  # speech over the assistant, not yet judged an interruption
        # The answer waits for an MCP server's tools, or makes the calls the client approved.
        return not (self.mcp.listing(self.config.tools) or self.mcp.unanswered(list(self.conversation)))

    def _early_answer(self: _Session, words: str) -> tuple[Response, ChatRequest]:
        """An answer to ``words`` as the user's next message, and its request to the LLM."""
        response = new_response(self.config, None, self.conversation, ids=self._ids, speculative=True)
        response.mcp_tools = self.mcp.bindings(response.tools)
        pending = Entry(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": words}]})
        return response, self._chat_request(response, [*self.conversation, pending])
