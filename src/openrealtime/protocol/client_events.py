"""Client events (reference sections 4, 7 and 8), parsed strictly: unknown fields are errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from openrealtime.protocol.config import (
    MaxOutputTokens,
    SessionConfig,
    ToolChoice,
    Tools,
    TranslationSessionConfig,
    WireModel,
)
from openrealtime.protocol.items import ConversationItem, ResponseInputItem


class ClientEvent(WireModel):
    event_id: str | None = None


class SessionUpdate(ClientEvent):
    type: Literal["session.update"]
    session: SessionConfig


class InputAudioBufferAppend(ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str


class InputAudioBufferCommit(ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClear(ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ConversationItemCreate(ClientEvent):
    type: Literal["conversation.item.create"]
    item: ConversationItem
    previous_item_id: str | None = None


class ConversationItemRetrieve(ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


class ConversationItemDelete(ClientEvent):
    type: Literal["conversation.item.delete"]
    item_id: str


class ConversationItemTruncate(ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = Field(ge=0)
    audio_end_ms: int = Field(ge=0)


class ResponseOutputAudio(WireModel):
    format: dict[str, Any] | None = None
    voice: str | dict[str, Any] | None = None


class ResponseAudio(WireModel):
    output: ResponseOutputAudio | None = None


class ResponseCreateParams(WireModel):
    """``RealtimeResponseCreateParams`` (reference 9.4): per-response overrides."""

    audio: ResponseAudio | None = None
    conversation: Literal["auto", "none"] | str | None = None
    input: list[ResponseInputItem] | None = None
    instructions: str | None = None
    max_output_tokens: MaxOutputTokens | None = None
    metadata: dict[str, str] | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    parallel_tool_calls: bool | None = None
    prompt: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    tool_choice: ToolChoice | None = None
    tools: Tools | None = None


class ResponseCreate(ClientEvent):
    type: Literal["response.create"]
    response: ResponseCreateParams | None = None


class ResponseCancel(ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


class OutputAudioBufferClear(ClientEvent):
    type: Literal["output_audio_buffer.clear"]


class TranslationSessionUpdate(ClientEvent):
    type: Literal["session.update"]
    session: TranslationSessionConfig


class TranslationAppend(ClientEvent):
    type: Literal["session.input_audio_buffer.append"]
    audio: str


class SessionClose(ClientEvent):
    type: Literal["session.close"]


RealtimeClientEvent = Annotated[
    SessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | ConversationItemCreate
    | ConversationItemRetrieve
    | ConversationItemDelete
    | ConversationItemTruncate
    | ResponseCreate
    | ResponseCancel
    | OutputAudioBufferClear,
    Field(discriminator="type"),
]

TranslationClientEvent = Annotated[
    TranslationSessionUpdate | TranslationAppend | SessionClose, Field(discriminator="type")
]

__all__ = [
    "ClientEvent",
    "ConversationItemCreate",
    "ConversationItemDelete",
    "ConversationItemRetrieve",
    "ConversationItemTruncate",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCommit",
    "OutputAudioBufferClear",
    "RealtimeClientEvent",
    "ResponseCancel",
    "ResponseCreate",
    "ResponseCreateParams",
    "SessionClose",
    "SessionUpdate",
    "TranslationAppend",
    "TranslationClientEvent",
    "TranslationSessionUpdate",
]
