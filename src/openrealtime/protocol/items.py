"""Conversation items (reference 9.6), as clients send them and as the server reports them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from openrealtime.protocol.config import WireModel

ItemStatus = Literal["in_progress", "completed", "incomplete"]


class InputText(WireModel):
    type: Literal["input_text"] = "input_text"
    text: str


class InputAudio(WireModel):
    type: Literal["input_audio"] = "input_audio"
    audio: str | None = None
    transcript: str | None = None


class InputImage(WireModel):
    type: Literal["input_image"] = "input_image"
    image_url: str
    detail: Literal["auto", "low", "high"] = "auto"


class OutputText(WireModel):
    type: Literal["output_text"] = "output_text"
    text: str


class OutputAudio(WireModel):
    type: Literal["output_audio"] = "output_audio"
    audio: str | None = None
    transcript: str | None = None


ContentPart = Annotated[InputText | InputAudio | InputImage | OutputText | OutputAudio, Field(discriminator="type")]


class MessageItem(WireModel):
    type: Literal["message"] = "message"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: ItemStatus | None = None
    role: Literal["system", "user", "assistant"]
    content: list[ContentPart]


class FunctionCallItem(WireModel):
    type: Literal["function_call"] = "function_call"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: ItemStatus | None = None
    name: str
    call_id: str | None = None
    arguments: str


class FunctionCallOutputItem(WireModel):
    type: Literal["function_call_output"] = "function_call_output"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: ItemStatus | None = None
    call_id: str
    output: str


class McpApprovalResponseItem(WireModel):
    """The client's answer to an ``mcp_approval_request`` item (:mod:`openrealtime.session.mcp`)."""

    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    id: str | None = None
    approval_request_id: str
    approve: bool
    reason: str | None = None


ConversationItem = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | McpApprovalResponseItem, Field(discriminator="type")
]


class ItemReference(WireModel):
    type: Literal["item_reference"] = "item_reference"
    id: str


ResponseInputItem = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem | McpApprovalResponseItem | ItemReference,
    Field(discriminator="type"),
]
