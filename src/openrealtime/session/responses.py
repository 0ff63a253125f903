"""One session's response lifecycle (reference 5.5 and 6.2-6.4): from the LLM's stream to events.

A :class:`ResponseWriter` turns engine results for a response into the wire events in OpenAI's order:
the output item and content part, transcript deltas right before the audio they caption, audio
deltas as each clause is synthesized (one TTS job at a time, so speech stays in order), function-call
argument deltas, and on completion, cancellation or failure the closing events, ``response.done`` and
``rate_limits.updated``. The session decides *when* responses start and stop; this module, *what* they
say.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openrealtime.audio.codec import AudioFormat, encode_audio
from openrealtime.audio.resample import StreamResampler
from openrealtime.contracts import ChatDone, TextDelta, ToolCallDelta
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import FunctionTool
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.commands import AudioChunk, CancelJob, LlmChunk, Synthesize
from openrealtime.session.conversation import Entry, SpokenClause
from openrealtime.session.ids import Ids

RATE_LIMIT_TOKENS = 1_000_000
MS_PER_S = 1000
_MARKUP = re.compile(r"[*_#`~]+|\[(?:[^\]]*)\]\([^)]*\)")


def speakable(text: str) -> str:
    """Text as it should be spoken: markdown marks removed."""
    return _MARKUP.sub("", text).strip()


def spoken_clauses(splitter: ClauseSplitter, chunk: object) -> list[str]:
    """The clauses, as spoken, that an LLM chunk completes: those a text delta finishes, and at
    :class:`ChatDone` the rest of the answer (shared by responses and the answer begun in the pause)."""
    if isinstance(chunk, TextDelta):
        return [speakable(c) for c in splitter.feed(chunk.text)]
    if isinstance(chunk, ChatDone):
        return [speakable(c) for c in splitter.flush()]
    return []


@dataclass
class _Call:
    entry: Entry
    output_index: int
    arguments: str = ""


@dataclass
class Response:
    """One response's state from ``response.created`` to ``response.done``."""

    id: str
    in_conversation: bool
    modalities: list[str]
    voice: str
    output_format: AudioFormat
    instructions: str
    tools: list[FunctionTool]
    tool_choice: str
    max_tokens: int
    metadata: dict[str, str] | None
    custom_input: list[Entry] | None
    status: str = "in_progress"
    status_details: dict[str, Any] | None = None
    output: list[Entry] = field(default_factory=list)
    llm_job: str | None = None
    llm_done: bool = False
    finish_reason: str = "stop"
    message: Entry | None = None
    message_index: int = 0
    text: str = ""
    splitter: ClauseSplitter = field(default_factory=ClauseSplitter)
    clauses: deque[str] = field(default_factory=deque)
    tts_job: str | None = None
    tts_clause: str | None = None
    tts_started: bool = False
    tts_clause_start_ms: int = 0
    spoken: str = ""
    audio_samples: int = 0
    resampler: StreamResampler | None = None
    resampler_rate_hz: int = 0
    calls: dict[int, _Call] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def audio(self) -> bool:
        return self.modalities == ["audio"]

    @property
    def audio_ms(self) -> int:
        return self.audio_samples * MS_PER_S // self.output_format.rate_hz


class ResponseWriter:
    """Writes the events of every response of one session into its event list.

    Args:
        events: The session's outgoing events (shared).
        commands: The session's outgoing commands (shared).
        ids: The session's id source.
        jobs: Job id -> response id, shared with the session so it can route results.
        conversation_id: The default conversation's id.
        add_item: Adds an output item to the default conversation (emits ``conversation.item.added``).
        item_done: Emits ``conversation.item.done`` for an item of the default conversation.
        on_finished: Called with each response right before its ``response.done``.
    """

    def __init__(
        self,
        *,
        events: list[se.ServerEvent],
        commands: list[object],
        ids: Ids,
        jobs: dict[str, str],
        conversation_id: str,
        add_item: Callable[[Entry], None],
        item_done: Callable[[Entry], None],
        on_finished: Callable[[Response], None],
    ) -> None:
        self.events = events
        self.commands = commands
        self.ids = ids
        self.jobs = jobs
        self.conversation_id = conversation_id
        self.add_item = add_item
        self.item_done = item_done
        self.on_finished = on_finished
        self.produced_audio = False

    def response_dict(self, response: Response, *, usage: bool = False) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": response.status,
            "status_details": response.status_details,
            "output": [e.item for e in response.output],
            "conversation_id": self.conversation_id if response.in_conversation else None,
            "output_modalities": response.modalities,
            "max_output_tokens": response.max_tokens,
            "audio": {
                "output": {
                    "format": {
                        "type": response.output_format.value,
                        **({"rate": 24000} if response.output_format is AudioFormat.PCM else {}),
                    },
                    "voice": response.voice,
                }
            },
            "usage": self.usage(response) if usage else None,
            "metadata": response.metadata,
        }

    @staticmethod
    def usage(response: Response) -> dict[str, Any]:
        return {
            "total_tokens": response.input_tokens + response.output_tokens,
            "input_tokens": response.input_tokens,
            "output_tokens": response.output_tokens,
            "input_token_details": {
                "text_tokens": response.input_tokens,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": response.output_tokens, "audio_tokens": 0},
        }

    def open_message(self, response: Response) -> Entry:
        if response.message is not None:
            return response.message
        kind = "output_audio" if response.audio else "output_text"
        entry = Entry(
            item={
                "id": self.ids.new("item"),
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        )
        response.message = entry
        response.message_index = len(response.output)
        response.output.append(entry)
        self.events.append(
            se.OutputItemAdded(response_id=response.id, output_index=response.message_index, item=entry.item)
        )
        if response.in_conversation:
            self.add_item(entry)
        part: dict[str, Any] = {"type": "audio", "transcript": ""} if response.audio else {"type": "text", "text": ""}
        self.events.append(
            se.ContentPartAdded(
                response_id=response.id,
                item_id=entry.id,
                output_index=response.message_index,
                content_index=0,
                part=part,
            )
        )
        entry.item["content"] = [{"type": kind, "transcript": ""} if response.audio else {"type": kind, "text": ""}]
        return entry

    def ids_of(self, response: Response) -> dict[str, Any]:
        assert response.message is not None
        return {
            "response_id": response.id,
            "item_id": response.message.id,
            "output_index": response.message_index,
            "content_index": 0,
        }

    def on_llm(self, response: Response, result: LlmChunk) -> None:
        chunk = result.chunk
        if isinstance(chunk, TextDelta):
            if not chunk.text:
                return
            self.open_message(response)
            response.text += chunk.text
            if response.audio:
                response.clauses.extend(spoken_clauses(response.splitter, chunk))
                self.speak_next(response)
            else:
                self.events.append(se.OutputTextDelta(**self.ids_of(response), delta=chunk.text))
        elif isinstance(chunk, ToolCallDelta):
            self.on_tool_delta(response, chunk)
        elif isinstance(chunk, ChatDone):
            response.llm_done = True
            response.finish_reason = chunk.finish_reason
            response.input_tokens, response.output_tokens = chunk.input_tokens, chunk.output_tokens
            self.jobs.pop(result.job_id, None)
            if response.audio:
                response.clauses.extend(spoken_clauses(response.splitter, chunk))
                response.clauses = deque(c for c in response.clauses if c)
                self.speak_next(response)
            self.maybe_complete(response)

    def on_tool_delta(self, response: Response, delta: ToolCallDelta) -> None:
        call = response.calls.get(delta.index)
        if call is None:
            entry = Entry(
                item={
                    "id": self.ids.new("item"),
                    "object": "realtime.item",
                    "type": "function_call",
                    "status": "in_progress",
                    "name": delta.name or "",
                    "call_id": self.ids.new("call"),
                    "arguments": "",
                }
            )
            call = _Call(entry=entry, output_index=len(response.output))
            response.calls[delta.index] = call
            response.output.append(entry)
            self.events.append(
                se.OutputItemAdded(response_id=response.id, output_index=call.output_index, item=entry.item)
            )
            if response.in_conversation:
                self.add_item(entry)
        if delta.arguments:
            call.arguments += delta.arguments
            self.events.append(
                se.FunctionCallArgumentsDelta(
                    response_id=response.id,
                    item_id=call.entry.id,
                    output_index=call.output_index,
                    call_id=call.entry.item["call_id"],
                    delta=delta.arguments,
                )
            )

    def speak_next(self, response: Response) -> None:
        if response.tts_job is not None or not response.clauses or response.status != "in_progress":
            return
        clause = response.clauses.popleft()
        job_id = self.ids.new("job")
        response.tts_job, response.tts_clause, response.tts_started = job_id, clause, False
        self.jobs[job_id] = response.id
        self.commands.append(Synthesize(job_id=job_id, text=clause, voice=response.voice, language="en"))

    def begin_clause(self, response: Response) -> None:
        """The clause's words go out right before its first audio, so captions follow the speech."""
        clause = response.tts_clause or ""
        delta = clause if not response.spoken else " " + clause
        response.spoken += delta
        response.tts_started = True
        response.tts_clause_start_ms = response.audio_ms
        assert response.message is not None
        # Recorded as it starts, so a truncation mid-clause keeps the share of it that was heard.
        response.message.clauses.append(SpokenClause(clause, response.audio_ms, response.audio_ms))
        self.events.append(se.OutputAudioTranscriptDelta(**self.ids_of(response), delta=delta))

    def on_audio(self, response: Response, chunk: AudioChunk) -> None:
        if not response.tts_started:
            self.begin_clause(response)
        rate = response.output_format.rate_hz
        if response.resampler is None or response.resampler_rate_hz != chunk.sample_rate_hz:
            response.resampler = StreamResampler(chunk.sample_rate_hz, rate)
            response.resampler_rate_hz = chunk.sample_rate_hz
        samples = response.resampler.process(chunk.audio)
        self.send_audio(response, samples)

    def send_audio(self, response: Response, samples: Any) -> None:
        if samples.size == 0:
            return
        response.audio_samples += samples.size
        self.produced_audio = True
        if response.message is not None:
            response.message.audio_ms = response.audio_ms
            if response.message.clauses:
                response.message.clauses[-1].end_ms = response.audio_ms
        data = base64.b64encode(encode_audio(samples, response.output_format)).decode("ascii")
        self.events.append(se.OutputAudioDelta(**self.ids_of(response), delta=data))

    def on_clause_spoken(self, response: Response) -> None:
        if not response.tts_started and response.tts_clause:
            self.begin_clause(response)
        self.jobs.pop(response.tts_job or "", None)
        response.tts_job = None
        self.speak_next(response)
        self.maybe_complete(response)

    def maybe_complete(self, response: Response) -> None:
        if response.llm_done and response.tts_job is None and not response.clauses:
            if response.finish_reason == "length":
                self.finish(response, "incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
            else:
                self.finish(response, "completed", None)

    def cancel(self, response: Response, reason: str) -> None:
        self.finish(response, "cancelled", {"type": "cancelled", "reason": reason})

    def finish(self, response: Response, status: str, details: dict[str, Any] | None) -> None:
        """Close every open part and item, then ``response.done`` and ``rate_limits.updated``."""
        for job in (response.llm_job, response.tts_job):
            if job is not None and job in self.jobs:
                self.commands.append(CancelJob(job))
                self.jobs.pop(job, None)
        response.tts_job = None
        response.status, response.status_details = status, details
        item_status = "completed" if status == "completed" else "incomplete"
        if response.message is not None:
            entry = response.message
            ids = self.ids_of(response)
            if response.audio:
                if response.resampler is not None and status == "completed":
                    self.send_audio(response, response.resampler.flush())
                entry.audio_ms = response.audio_ms
                transcript = response.spoken
                self.events.append(se.OutputAudioDone(**ids))
                self.events.append(se.OutputAudioTranscriptDone(**ids, transcript=transcript))
                part: dict[str, Any] = {"type": "audio", "transcript": transcript}
                entry.item["content"] = [{"type": "output_audio", "transcript": transcript}]
            else:
                self.events.append(se.OutputTextDone(**ids, text=response.text))
                part = {"type": "text", "text": response.text}
                entry.item["content"] = [{"type": "output_text", "text": response.text}]
            self.events.append(se.ContentPartDone(**ids, part=part))
            entry.item["status"] = item_status
            if response.in_conversation:
                self.item_done(entry)
            self.events.append(
                se.OutputItemDone(response_id=response.id, output_index=response.message_index, item=entry.item)
            )
        for call in response.calls.values():
            item = call.entry.item
            item["arguments"] = call.arguments
            item["status"] = item_status
            self.events.append(
                se.FunctionCallArgumentsDone(
                    response_id=response.id,
                    item_id=call.entry.id,
                    output_index=call.output_index,
                    call_id=item["call_id"],
                    name=item["name"],
                    arguments=call.arguments,
                )
            )
            if response.in_conversation:
                self.item_done(call.entry)
            self.events.append(se.OutputItemDone(response_id=response.id, output_index=call.output_index, item=item))
        self.on_finished(response)
        self.events.append(se.ResponseDone(response=self.response_dict(response, usage=True)))
        used = response.input_tokens + response.output_tokens
        self.events.append(
            se.RateLimitsUpdated(
                rate_limits=[
                    {
                        "name": "tokens",
                        "limit": RATE_LIMIT_TOKENS,
                        "remaining": RATE_LIMIT_TOKENS - used,
                        "reset_seconds": 0.0,
                    }
                ]
            )
        )
