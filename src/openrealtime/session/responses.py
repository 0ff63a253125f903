"""The one response pipeline (reference 5.5 and 6.2-6.4): from the LLM's stream to events.

A :class:`ResponseWriter` turns engine results for a response into the wire events in OpenAI's order:
the output item and content part, transcript deltas right before the audio they caption, audio
deltas as each clause is synthesized (one TTS job at a time, so speech stays in order), function-call
argument deltas, and on completion, cancellation or failure the closing events, ``response.done`` and
``rate_limits.updated``. Every method returns its outputs. The session decides *when* responses start
and stop; this module, *what* they say.

A response begun in the end-of-turn pause runs the same pipeline in the ``SPECULATIVE`` state: its
results are held, and only its first clause's synthesis starts (so the first audio is ready when the
turn does end there). :meth:`ResponseWriter.promote` puts it on the wire at the commit and replays
what was held, exactly as if it had arrived then; :meth:`~ResponseWriter.drop` ends it unseen.

Where the server plays the audio itself (a WebRTC call, ``server_playback``), each piece of speech is a
:class:`~openrealtime.session.commands.PlayAudio` command at 24 kHz instead of a
``response.output_audio.delta`` (OpenAI sends none on a call), whatever output format the session
names, and a response that spoke ends with :class:`~openrealtime.session.commands.EndOfAudio`.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from openrealtime.contracts import ChatRequest, TextDelta, ToolCallDelta
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import (
    AudioChunk,
    CancelJob,
    EndOfAudio,
    EngineResult,
    Generate,
    JobFailed,
    LlmChunk,
    SynthesisDone,
)
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.session.ids import Ids
from openrealtime.session.mcp_calls import McpCalls, goes_on, pending, running
from openrealtime.session.mcp_commands import McpToolCalled
from openrealtime.session.response import (
    PCM_RATE_HZ,
    Call,
    Response,
    part_ids,
    response_body,
    spoken_clauses,
)
from openrealtime.session.response_speech import ResponseSpeech
from openrealtime.session.signals import Output
from openrealtime.session.states import ResponseState

RATE_LIMIT_TOKENS = 1_000_000
_CLOSING = {
    ResponseState.COMPLETED: None,
    ResponseState.INCOMPLETE: "incomplete",
    ResponseState.CANCELLED: "cancelled",
    ResponseState.FAILED: "failed",
}


class ResponseWriter(ResponseSpeech):
    """Writes the events of every response of one session.

    Args:
        ids: The session's id source.
        conversation: The default conversation (output items of in-conversation responses join it).
        conversation_id: Its id.
        server_playback: The server plays the audio (``PlayAudio`` commands, not audio deltas).
    """

    def __init__(
        self, ids: Ids, conversation: Conversation, conversation_id: str, *, server_playback: bool = False
    ) -> None:
        self.server_playback = server_playback
        self._ids = ids
        self._conversation = conversation
        self.conversation_id = conversation_id
        self.jobs: dict[str, Response] = {}  # job id -> the response it works for
        self.produced_audio = False
        self.mcp = McpCalls(ids, conversation)
        # The session's next LLM round of a response whose MCP calls are answered (its chat request).
        # Weak: the session owns the writer, and must be freed by reference counting alone.
        self.continuation: weakref.WeakMethod[Callable[[Response], list[Output]]] | None = None

    # --- start, promote, drop ----------------------------------------------------------------------

    def created(self, response: Response) -> se.ResponseCreated:
        if self.server_playback:
            response.playback_rate_hz = PCM_RATE_HZ  # the call's track takes 24 kHz, whatever the format
        return se.ResponseCreated(response=response_body(response, self.conversation_id))

    def generate(self, response: Response, request: ChatRequest) -> list[Output]:
        job_id = self._ids.new("job")
        response.llm_job = job_id
        self.jobs[job_id] = response
        return [Generate(job_id=job_id, request=request)]

    def promote(self, response: Response) -> list[Output]:
        """The turn ended as speculated: the response goes on the wire, and what it held is replayed.

        The LLM's chunks go first, then the early clause's audio, as the response would have had them.
        """
        response.id = self._ids.new("resp")
        response.to(ResponseState.IN_PROGRESS)
        out: list[Output] = [self.created(response)]
        held, response.held = response.held, []
        for result in sorted(held, key=lambda r: not isinstance(r, LlmChunk)):
            out += self.on_result(result)
        return out

    def drop(self, response: Response) -> list[Output]:
        """End a speculative response unseen (the speaker went on, or its context changed)."""
        response.to(ResponseState.DROPPED)
        return self._cancel_jobs(response)

    def _cancel_jobs(self, response: Response) -> list[Output]:
        out: list[Output] = []
        for job in response.jobs():
            if self.jobs.pop(job, None) is not None:
                out.append(CancelJob(job))
        response.tts_job = None
        return out

    # --- results -----------------------------------------------------------------------------------

    def on_result(self, result: EngineResult) -> list[Output]:
        response = self.jobs.get(result.job_id)
        if response is None:
            return []  # a late result of a cancelled or finished response: dropped by id
        if response.state is ResponseState.SPECULATIVE:
            return self._hold(response, result)
        match result:
            case LlmChunk():
                return self._on_llm(response, result)
            case AudioChunk() if result.job_id == response.tts_job:
                return self._on_audio(response, result)
            case SynthesisDone() if result.job_id == response.tts_job:
                return self._on_clause_spoken(response)
            case McpToolCalled():
                self.jobs.pop(result.job_id, None)
                return self.mcp.on_called(response, result) + self._after_calls(response)
            case JobFailed(code=code, message=message):
                error = {"type": "server_error", "code": code, "message": message}
                return self.finish(response, ResponseState.FAILED, {"type": "failed", "error": error})
        return []

    def _after_calls(self, response: Response) -> list[Output]:
        """The round's MCP calls answered: the model goes on with their results, or the response ends."""
        if running(response) or response.state is not ResponseState.IN_PROGRESS or not response.llm_done:
            return []
        next_round = self.continuation() if self.continuation is not None else None
        if goes_on(response) and next_round is not None:
            response.rounds += 1
            response.call_base = max(response.calls) + 1
            response.llm_done = False
            return next_round(response)
        return self._maybe_complete(response)

    def _hold(self, response: Response, result: EngineResult) -> list[Output]:
        """Speculative: keep the result for the commit; start the first clause's speech as it completes."""
        if isinstance(result, JobFailed):
            if result.job_id == response.llm_job:
                return self.drop(response)  # the response made at the commit generates again
            self.jobs.pop(result.job_id, None)
            response.tts_job, response.tts_clause, response.prespoken = None, None, None
            response.held = [r for r in response.held if r.job_id != result.job_id]
            return []
        response.held.append(result)
        if not isinstance(result, LlmChunk) or not response.audio or response.prespoken is not None:
            return []
        clauses = spoken_clauses(response.lookahead, result.chunk)
        if not clauses:
            return []
        response.prespoken = clauses[0]
        if not clauses[0]:
            return []  # nothing to say up front ("" ends the look-ahead): speech starts after the commit
        return self._synthesize(response, clauses[0])

    def _on_llm(self, response: Response, result: LlmChunk) -> list[Output]:
        chunk = result.chunk
        if isinstance(chunk, TextDelta):
            if not chunk.text:
                return []
            out = self._open_message(response)
            response.text += chunk.text
            if not response.audio:
                return [*out, se.OutputTextDelta(**part_ids(response), delta=chunk.text)]
            self._queue(response, spoken_clauses(response.splitter, chunk))
            return out + self._speak_next(response)
        if isinstance(chunk, ToolCallDelta):
            return self._on_tool_delta(response, chunk)
        # ChatDone, the last kind of chunk there is: the answer is all here.
        response.llm_done = True
        response.finish_reason = chunk.finish_reason
        response.input_tokens += chunk.input_tokens
        response.output_tokens += chunk.output_tokens
        self.jobs.pop(result.job_id, None)
        spoken: list[Output] = []
        if response.audio:
            self._queue(response, spoken_clauses(response.splitter, chunk))
            response.clauses = deque(c for c in response.clauses if c)
            spoken = self._speak_next(response)
        if pending(response):
            return spoken + self.mcp.start(response, self.jobs) + self._after_calls(response)
        return spoken + self._maybe_complete(response)

    def _queue(self, response: Response, clauses: list[str]) -> None:
        for clause in clauses:
            if response.prespoken and clause == response.prespoken:
                response.prespoken = None  # its synthesis began in the pause
                continue
            response.clauses.append(clause)

    def _open_message(self, response: Response) -> list[Output]:
        if response.message is not None:
            return []
        entry = Entry(item=self._item("message", role="assistant", content=[]))
        response.message, response.message_index = entry, len(response.output)
        response.output.append(entry)
        out: list[Output] = [
            se.OutputItemAdded(response_id=response.id, output_index=response.message_index, item=entry.item)
        ]
        if response.in_conversation:
            out.append(self._conversation.added(entry))
        part: dict[str, Any] = {"type": "audio", "transcript": ""} if response.audio else {"type": "text", "text": ""}
        out.append(se.ContentPartAdded(**part_ids(response), part=part))
        content = {"type": "output_audio", "transcript": ""} if response.audio else {"type": "output_text", "text": ""}
        entry.item["content"] = [content]
        return out

    def _item(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self._ids.new("item"), "object": "realtime.item", "type": kind, "status": "in_progress", **fields}

    def _on_tool_delta(self, response: Response, delta: ToolCallDelta) -> list[Output]:
        out: list[Output] = []
        key = response.call_base + delta.index
        call = response.calls.get(key)
        binding = response.mcp_tools.get(delta.name or "") if call is None else call.mcp
        if binding is not None:
            if call is None:
                call = self.mcp.open(response, key, binding)
                out += self.mcp.added(response, call)
            return out + self.mcp.delta(response, call, delta.arguments)
        if call is None:
            item = self._item("function_call", name=delta.name or "", call_id=self._ids.new("call"), arguments="")
            call = Call(entry=Entry(item=item), output_index=len(response.output))
            response.calls[key] = call
            response.output.append(call.entry)
            out.append(se.OutputItemAdded(response_id=response.id, output_index=call.output_index, item=item))
            if response.in_conversation:
                out.append(self._conversation.added(call.entry))
        if delta.arguments:
            call.arguments += delta.arguments
            out.append(
                se.FunctionCallArgumentsDelta(
                    response_id=response.id,
                    item_id=call.entry.id,
                    output_index=call.output_index,
                    call_id=call.entry.item["call_id"],
                    delta=delta.arguments,
                )
            )
        return out

    # --- speech ------------------------------------------------------------------------------------

    def _maybe_complete(self, response: Response) -> list[Output]:
        if response.state is not ResponseState.IN_PROGRESS:
            return []
        if not response.llm_done or response.tts_job is not None or response.clauses or running(response):
            return []
        if response.finish_reason == "length":
            return self.finish(
                response, ResponseState.INCOMPLETE, {"type": "incomplete", "reason": "max_output_tokens"}
            )
        return self.finish(response, ResponseState.COMPLETED, None)

    # --- the end -----------------------------------------------------------------------------------

    def cancel(self, response: Response, reason: str) -> list[Output]:
        return self.finish(response, ResponseState.CANCELLED, {"type": "cancelled", "reason": reason})

    def finish(self, response: Response, state: ResponseState, details: dict[str, Any] | None) -> list[Output]:
        """Close every open part and item, then ``response.done`` and ``rate_limits.updated``."""
        out = self._cancel_jobs(response)
        response.to(state)
        response.status_details = details
        item_status = "completed" if state is ResponseState.COMPLETED else "incomplete"
        if response.message is not None:
            out += self._close_message(response, response.message, item_status)
        for call in response.calls.values():
            if call.mcp is not None:
                out += self.mcp.close(response, call)  # one cut short (cancelled) ends without output
            else:
                out += _close_call(response, call, item_status, self._conversation)
        if self.server_playback and response.audio_samples:
            out.append(EndOfAudio(response.id))
        out.append(se.ResponseDone(response=response_body(response, self.conversation_id, usage=True)))
        used = response.input_tokens + response.output_tokens
        limits = {"name": "tokens", "limit": RATE_LIMIT_TOKENS, "remaining": RATE_LIMIT_TOKENS - used}
        out.append(se.RateLimitsUpdated(rate_limits=[{**limits, "reset_seconds": 0.0}]))
        return out

    def _close_message(self, response: Response, entry: Entry, item_status: str) -> list[Output]:
        ids = part_ids(response)
        out: list[Output] = []
        if response.audio:
            if response.resampler is not None and response.state is ResponseState.COMPLETED:
                out += self._send_audio(response, response.resampler.flush())
            entry.audio_ms = response.audio_ms
            transcript = response.spoken
            out.append(se.OutputAudioDone(**ids))
            out.append(se.OutputAudioTranscriptDone(**ids, transcript=transcript))
            part: dict[str, Any] = {"type": "audio", "transcript": transcript}
            entry.item["content"] = [{"type": "output_audio", "transcript": transcript}]
        else:
            out.append(se.OutputTextDone(**ids, text=response.text))
            part = {"type": "text", "text": response.text}
            entry.item["content"] = [{"type": "output_text", "text": response.text}]
        out.append(se.ContentPartDone(**ids, part=part))
        entry.item["status"] = item_status
        if response.in_conversation:
            out.append(self._conversation.done(entry))
        out.append(se.OutputItemDone(response_id=response.id, output_index=response.message_index, item=entry.item))
        return out


def _close_call(response: Response, call: Call, item_status: str, conversation: Conversation) -> list[Output]:
    """A function call's closing events: its arguments in full, then its item done."""
    item = call.entry.item
    item["arguments"] = call.arguments
    item["status"] = item_status
    out: list[Output] = [
        se.FunctionCallArgumentsDone(
            response_id=response.id,
            item_id=call.entry.id,
            output_index=call.output_index,
            call_id=item["call_id"],
            name=item["name"],
            arguments=call.arguments,
        )
    ]
    if response.in_conversation:
        out.append(conversation.done(call.entry))
    out.append(se.OutputItemDone(response_id=response.id, output_index=call.output_index, item=item))
    return out
