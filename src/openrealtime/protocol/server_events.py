"""Server events (reference sections 5, 7 and 8, required fields per section 12).

Events carry no ``event_id``: the codec stamps a fresh one on each when it is written, so a session's
output is deterministic and comparable in tests. Fields default to what OpenAI sends when unset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, model_validator

from openrealtime.audio.codec import AudioOut
from openrealtime.exceptions import ProtocolError


class ServerEvent(BaseModel):
    """Base of server events; ``type`` is each subclass's literal."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    type: str

    @model_validator(mode="before")
    @classmethod
    def _snapshot(cls, data: Any) -> Any:
        """An event is a snapshot of the moment it was made.

        Items, parts and responses are handed in as the session's own dicts, which it goes on
        changing (a user item's transcript arrives later); pydantic copies only the outer dict, so
        without a deep copy an event already queued would change with them, and what went on the
        wire would depend on how fast an engine answered.
        """
        if isinstance(data, dict):
            return {key: _json_copy(value) for key, value in data.items()}
        return data


def _json_copy(value: Any) -> Any:
    """A copy of JSON-shaped ``value``: its dicts and lists new, the rest (strings, numbers) shared.

    ``copy.deepcopy`` did the same at four times the cost (its memo and dispatch): 44 us an item
    event, a sixth of a 2,000-item burst's time (issue 10)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: str
    code: str | None
    message: str
    param: str | None
    event_id: str | None


class Error(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetail

    @classmethod
    def of(cls, exc: ProtocolError, event_id: str | None = None) -> Error:
        """The ``error`` event for a refused client event (its own ``event_id`` wins over the given one)."""
        return cls(
            error=ErrorDetail(
                type=exc.error_type,
                code=exc.code,
                message=exc.message,
                param=exc.param,
                event_id=exc.event_id or event_id,
            )
        )


# --- session ---------------------------------------------------------------------------------------


class SessionCreated(ServerEvent):
    type: Literal["session.created"] = "session.created"
    session: dict[str, Any]


class SessionUpdated(ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: dict[str, Any]


# --- input audio buffer ----------------------------------------------------------------------------


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class Committed(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None
    item_id: str


class Cleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TimeoutTriggered(ServerEvent):
    type: Literal["input_audio_buffer.timeout_triggered"] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: int
    audio_end_ms: int
    item_id: str


# --- conversation items ----------------------------------------------------------------------------


class ItemAdded(ServerEvent):
    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None
    item: dict[str, Any]


class ItemDone(ServerEvent):
    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None
    item: dict[str, Any]


class ItemRetrieved(ServerEvent):
    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: dict[str, Any]
    # A spoken turn's audio: the codec writes it, base64 in the input format, as its input_audio part's "audio".
    audio: SkipValidation[AudioOut | None] = Field(default=None, exclude=True)


class ItemTruncated(ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int
    audio_end_ms: int


class ItemDeleted(ServerEvent):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str
    logprobs: list[dict[str, Any]] | None = None


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: dict[str, Any]
    logprobs: list[dict[str, Any]] | None = None


class TranscriptionFailed(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: dict[str, Any]


# --- responses -------------------------------------------------------------------------------------


class ResponseCreated(ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: dict[str, Any]


class ResponseDone(ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: dict[str, Any]


class OutputItemAdded(ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int
    item: dict[str, Any]


class OutputItemDone(ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int
    item: dict[str, Any]


class ContentPartAdded(ServerEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]


class ContentPartDone(ServerEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]


class _PartEvent(ServerEvent):
    response_id: str
    item_id: str
    output_index: int
    content_index: int


class OutputAudioDelta(_PartEvent):
    """Output audio. A session sets ``audio`` (samples); the codec writes ``delta`` from it at the edge."""

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str = ""
    audio: SkipValidation[AudioOut | None] = Field(default=None, exclude=True)


class OutputAudioDone(_PartEvent):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class OutputAudioTranscriptDelta(_PartEvent):
    type: Literal["response.output_audio_transcript.delta"] = "response.output_audio_transcript.delta"
    delta: str


class OutputAudioTranscriptDone(_PartEvent):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class OutputTextDelta(_PartEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class OutputTextDone(_PartEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class FunctionCallArgumentsDelta(ServerEvent):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


class FunctionCallArgumentsDone(ServerEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str


# --- MCP tools (session/mcp.py) ---------------------------------------------------------------------


class McpListToolsInProgress(ServerEvent):
    type: Literal["mcp_list_tools.in_progress"] = "mcp_list_tools.in_progress"
    item_id: str


class McpListToolsCompleted(ServerEvent):
    type: Literal["mcp_list_tools.completed"] = "mcp_list_tools.completed"
    item_id: str


class McpListToolsFailed(ServerEvent):
    type: Literal["mcp_list_tools.failed"] = "mcp_list_tools.failed"
    item_id: str


class McpCallArgumentsDelta(ServerEvent):
    type: Literal["response.mcp_call_arguments.delta"] = "response.mcp_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int
    delta: str


class McpCallArgumentsDone(ServerEvent):
    type: Literal["response.mcp_call_arguments.done"] = "response.mcp_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int
    arguments: str


class McpCallInProgress(ServerEvent):
    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    item_id: str
    output_index: int


class McpCallCompleted(ServerEvent):
    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    item_id: str
    output_index: int


class McpCallFailed(ServerEvent):
    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    item_id: str
    output_index: int


class RateLimitsUpdated(ServerEvent):
    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[dict[str, Any]]


# --- the server's playback buffer (WebRTC calls only) ---------------------------------------------


class OutputAudioBufferStarted(ServerEvent):
    """The server began playing a response's audio to the caller (WebRTC/SIP only, as OpenAI)."""

    type: Literal["output_audio_buffer.started"] = "output_audio_buffer.started"
    response_id: str


class OutputAudioBufferStopped(ServerEvent):
    """A response's audio was played to its end and no more is coming (WebRTC/SIP only)."""

    type: Literal["output_audio_buffer.stopped"] = "output_audio_buffer.stopped"
    response_id: str


class OutputAudioBufferCleared(ServerEvent):
    """Unplayed audio was dropped: the caller spoke over it, or sent ``output_audio_buffer.clear``."""

    type: Literal["output_audio_buffer.cleared"] = "output_audio_buffer.cleared"
    response_id: str


# --- translation sessions --------------------------------------------------------------------------


class InputTranscriptDelta(ServerEvent):
    type: Literal["session.input_transcript.delta"] = "session.input_transcript.delta"
    delta: str
    elapsed_ms: int | None = None


class OutputTranscriptDelta(ServerEvent):
    type: Literal["session.output_transcript.delta"] = "session.output_transcript.delta"
    delta: str
    elapsed_ms: int | None = None


class TranslationAudioDelta(ServerEvent):
    """Translated speech; like :class:`OutputAudioDelta`, ``delta`` is written from ``audio`` at the edge."""

    type: Literal["session.output_audio.delta"] = "session.output_audio.delta"
    delta: str = ""
    elapsed_ms: int | None = None
    format: Literal["pcm16"] = "pcm16"
    sample_rate: int = 24_000
    channels: int = 1
    audio: SkipValidation[AudioOut | None] = Field(default=None, exclude=True)


class SessionClosed(ServerEvent):
    type: Literal["session.closed"] = "session.closed"
