"""Session configuration on the wire: audio formats, VAD, transcription, noise reduction, sessions.

These models serve twice. Parsed strictly (``extra="forbid"``) from a client's ``session.update``,
``model_dump(exclude_unset=True)`` gives exactly the fields the client set; dumped whole, they are the
*effective* session that ``session.created`` / ``session.updated`` carry, every field present (``null``
when unset), as OpenAI sends them (reference section 9).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

PCM_RATE_HZ = 24_000
DEFAULT_VAD_THRESHOLD = 0.5
DEFAULT_PREFIX_PADDING_MS = 300
# The live service reports 200 ms in session.created (the SDK docstring says 500): we follow the wire.
DEFAULT_SILENCE_DURATION_MS = 200
MAX_OUTPUT_TOKENS_CAP = 4096
_RESPONSE_ONLY_VAD_KEYS = ("create_response", "interrupt_response", "idle_timeout_ms", "barge_in")
#: Our extension (issue 13, session/bargein.py): how speech over the assistant interrupts it.
BargeInField = Literal["immediate", "adaptive"] | None


def _tokens_in_range(value: int | str) -> int | str:
    if isinstance(value, int) and not 1 <= value <= MAX_OUTPUT_TOKENS_CAP:
        raise ValueError(f"range:Expected a value between 1 and {MAX_OUTPUT_TOKENS_CAP}, or 'inf'")
    return value


#: ``max_output_tokens`` of a session or a response: an integer from 1 to 4096, or ``"inf"``.
MaxOutputTokens = Annotated[int | Literal["inf"], AfterValidator(_tokens_in_range)]


class WireModel(BaseModel):
    """Base of every strictly parsed wire model: unknown fields are the client's error."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class PcmFormat(WireModel):
    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int = PCM_RATE_HZ

    @field_validator("rate")
    @classmethod
    def _rate_is_24k(cls, value: int) -> int:
        # OpenAI answers rate 16000 with integer_below_min_value "Expected a value >= 24000".
        if value < PCM_RATE_HZ:
            raise ValueError(f"below_min:Expected a value >= {PCM_RATE_HZ}")
        if value > PCM_RATE_HZ:
            raise ValueError(f"above_max:Expected a value <= {PCM_RATE_HZ}")
        return value


class PcmuFormat(WireModel):
    type: Literal["audio/pcmu"] = "audio/pcmu"


class PcmaFormat(WireModel):
    type: Literal["audio/pcma"] = "audio/pcma"


AudioFormatConfig = Annotated[PcmFormat | PcmuFormat | PcmaFormat, Field(discriminator="type")]


class NoiseReduction(WireModel):
    type: Literal["near_field", "far_field"]
    strength: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_serializer(mode="wrap")
    def _unset_strength_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI's schema has no null strength: unset, it is left out of the echo (full strength applies).
        data: dict[str, Any] = handler(self)
        if data.get("strength", 0.0) is None:
            del data["strength"]
        return data


class InputTranscription(WireModel):
    model: str | None = None
    language: str | None = None
    languages: list[str] | None = None
    prompt: str | None = None
    keywords: list[str] | None = None
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None


class _Vad(WireModel):
    """What both turn detections share: our ``barge_in`` extension, in the echo only when set, so a
    strict client that never sets it never sees it."""

    @model_serializer(mode="wrap")
    def _unset_barge_in_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("barge_in", "") is None:
            del data["barge_in"]
        return data


class ServerVad(_Vad):
    type: Literal["server_vad"] = "server_vad"
    threshold: float = Field(default=DEFAULT_VAD_THRESHOLD, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(default=DEFAULT_PREFIX_PADDING_MS, ge=0, le=10_000)
    silence_duration_ms: int = Field(default=DEFAULT_SILENCE_DURATION_MS, ge=0, le=10_000)
    idle_timeout_ms: int | None = Field(default=None, ge=5_000, le=30_000)
    create_response: bool = True
    interrupt_response: bool = True
    barge_in: BargeInField = None


class SemanticVad(_Vad):
    type: Literal["semantic_vad"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True
    barge_in: BargeInField = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class AudioInput(WireModel):
    format: AudioFormatConfig = Field(default_factory=PcmFormat)
    noise_reduction: NoiseReduction | None = None
    transcription: InputTranscription | None = None
    turn_detection: TurnDetection | None = Field(default_factory=ServerVad)


class AudioOutput(WireModel):
    format: AudioFormatConfig = Field(default_factory=PcmFormat)
    voice: str | dict[str, Any] = "alloy"
    speed: float = Field(default=1.0, ge=0.25, le=1.5)


class RealtimeAudio(WireModel):
    input: AudioInput = Field(default_factory=AudioInput)
    output: AudioOutput = Field(default_factory=AudioOutput)


class TranscriptionAudio(WireModel):
    input: AudioInput = Field(default_factory=AudioInput)


class FunctionTool(WireModel):
    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class NamedToolChoice(WireModel):
    type: Literal["function"]
    name: str


class McpToolFilter(WireModel):
    """Which of an MCP server's tools a rule covers: by name, and/or by its ``readOnlyHint``."""

    read_only: bool | None = None
    tool_names: list[str] | None = None


class McpApprovalFilter(WireModel):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(WireModel):
    """A remote MCP server whose tools the server lists and calls itself (``session.tools[].type: "mcp"``).

    The rest is in :mod:`openrealtime.session.mcp`. What a server of our own cannot reach is refused
    by name: OpenAI's hosted connectors (``connector_id``), its Secure MCP Tunnel (``tunnel_id``),
    deferred loading by tool search, and programmatic callers.
    """

    type: Literal["mcp"]
    server_label: str = Field(min_length=1)
    server_url: str | None = None
    server_description: str | None = None
    authorization: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None
    allowed_callers: list[Literal["direct", "programmatic"]] | None = None
    defer_loading: bool | None = None
    connector_id: str | None = None
    tunnel_id: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> McpTool:
        if self.connector_id is not None:
            raise ValueError("mcp:OpenAI's hosted connectors are not available on this server; give a server_url.")
        if self.tunnel_id is not None:
            raise ValueError("mcp:Secure MCP Tunnels are not available on this server; give a server_url.")
        if self.server_url is None:
            raise ValueError("mcp:an MCP tool needs a server_url.")
        if not self.server_url.startswith(("http://", "https://")):
            raise ValueError("mcp:server_url must be an http:// or https:// URL of a streamable-HTTP MCP server.")
        if self.defer_loading:
            raise ValueError("mcp:defer_loading (tool search) is not supported; leave it out or false.")
        if self.allowed_callers is not None and "programmatic" in self.allowed_callers:
            raise ValueError("mcp:only 'direct' callers are supported.")
        return self

    @model_serializer(mode="wrap")
    def _set_fields_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Echoed as the client set it: OpenAI's schema has no nulls for the fields left out.
        return {k: v for k, v in handler(self).items() if v is not None}


class McpToolChoice(WireModel):
    type: Literal["mcp"]
    server_label: str
    name: str | None = None


def _tool_kind(value: Any) -> str:
    # A function tool may leave its ``type`` out, as before MCP tools came.
    kind = value.get("type", "function") if isinstance(value, dict) else getattr(value, "type", "function")
    return str(kind)


Tool = Annotated[Annotated[FunctionTool, Tag("function")] | Annotated[McpTool, Tag("mcp")], Discriminator(_tool_kind)]


def _unique_labels(tools: list[Any]) -> list[Any]:
    labels = [t.server_label for t in tools if isinstance(t, McpTool)]
    if len(labels) != len(set(labels)):
        raise ValueError("mcp:each MCP server in tools needs a server_label of its own.")
    return tools


#: ``tools`` of a session or a response: function tools and MCP servers, each server by its own label.
Tools = Annotated[list[Tool], AfterValidator(_unique_labels)]
ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice | McpToolChoice


class RetentionRatioTruncation(WireModel):
    type: Literal["retention_ratio"]
    retention_ratio: float = Field(ge=0.0, le=1.0)
    token_limits: dict[str, int] | None = None


class RealtimeSessionConfig(WireModel):
    """``RealtimeSessionCreateRequest`` (reference 9.1); response-only fields are allowed in input."""

    type: Literal["realtime"] = "realtime"
    object: Literal["realtime.session"] | None = None
    id: str | None = None
    expires_at: int | None = None
    model: str | None = None
    output_modalities: list[Literal["audio", "text"]] = Field(
        default_factory=lambda: list[Literal["audio", "text"]](["audio"])
    )
    instructions: str = ""
    tools: Tools = Field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    max_output_tokens: MaxOutputTokens = "inf"
    tracing: Literal["auto"] | dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | RetentionRatioTruncation = "auto"
    prompt: dict[str, Any] | None = None
    audio: RealtimeAudio = Field(default_factory=RealtimeAudio)
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None

    @field_validator("output_modalities")
    @classmethod
    def _one_modality(cls, value: list[str]) -> list[str]:
        if len(value) != 1:
            raise ValueError("modalities:output_modalities must be ['audio'] or ['text']")
        return value


class TranscriptionSessionConfig(WireModel):
    """``RealtimeTranscriptionSessionCreateRequest`` (reference 9.2)."""

    type: Literal["transcription"] = "transcription"
    object: Literal["realtime.transcription_session"] | None = None
    id: str | None = None
    expires_at: int | None = None
    audio: TranscriptionAudio = Field(default_factory=TranscriptionAudio)
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None

    @model_serializer(mode="wrap")
    def _no_response_settings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A transcription session has no responses: OpenAI's echo of its turn detection
        # (``RealtimeTranscriptionSessionTurnDetection``; the live session.created of reference
        # section 7) has no create_response, interrupt_response or idle_timeout_ms, so neither has ours.
        data: dict[str, Any] = handler(self)
        turn_detection = data.get("audio", {}).get("input", {}).get("turn_detection")
        if isinstance(turn_detection, dict):
            for key in _RESPONSE_ONLY_VAD_KEYS:
                turn_detection.pop(key, None)
        return data


SessionConfig = Annotated[RealtimeSessionConfig | TranscriptionSessionConfig, Field(discriminator="type")]


class TranslationTranscription(WireModel):
    model: str


class TranslationInput(WireModel):
    noise_reduction: NoiseReduction | None = None
    transcription: TranslationTranscription | None = None


class TranslationOutput(WireModel):
    language: str = "en"


class TranslationAudio(WireModel):
    input: TranslationInput = Field(default_factory=TranslationInput)
    output: TranslationOutput = Field(default_factory=TranslationOutput)


class TranslationSessionConfig(WireModel):
    """``RealtimeTranslationSession`` (reference 9.3); only ``audio`` may be updated."""

    id: str | None = None
    type: Literal["translation"] | None = None
    model: str | None = None
    expires_at: int | None = None
    audio: TranslationAudio = Field(default_factory=TranslationAudio)


def merge_update(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge the fields a client set into the current effective config.

    A sub-object whose ``type`` changes is replaced rather than merged (switching ``server_vad`` to
    ``semantic_vad`` must not keep ``silence_duration_ms``); ``null`` clears; lists replace.
    """
    merged = dict(current)
    for key, value in update.items():
        old = merged.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and ("type" not in value or value.get("type") == old.get("type"))
        ):
            merged[key] = merge_update(old, value)
        else:
            merged[key] = value
    return merged
