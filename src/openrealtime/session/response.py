"""One response: its parameters, its state (see :mod:`~openrealtime.session.states`), and its wire shape.

:class:`Response` holds what ``response.created`` and ``response.done`` describe and what the writer
(:mod:`~openrealtime.session.responses`) needs while the answer streams: the LLM job, the clauses
waiting to be spoken, the one synthesis in flight, the audio sent so far. :func:`response_body` is the
``response`` object of those events.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from openrealtime.audio.codec import AudioFormat
from openrealtime.audio.resample import StreamResampler
from openrealtime.contracts import ChatDone, TextDelta
from openrealtime.protocol.config import Tool
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.commands import EngineResult
from openrealtime.session.conversation import Entry
from openrealtime.session.states import ResponseState, advance

if TYPE_CHECKING:
    from openrealtime.session.mcp import McpBinding

MS_PER_S = 1000
PCM_RATE_HZ = 24_000
_MARKUP = re.compile(r"[*_#`~]+|\[(?:[^\]]*)\]\([^)]*\)")


def speakable(text: str) -> str:
    """Text as it should be spoken: markdown marks removed."""
    return _MARKUP.sub("", text).strip()


def spoken_clauses(splitter: ClauseSplitter, chunk: object) -> list[str]:
    """The clauses, as spoken, that an LLM chunk completes: those a text delta finishes, and at
    :class:`ChatDone` the rest of the answer."""
    if isinstance(chunk, TextDelta):
        return [speakable(c) for c in splitter.feed(chunk.text)]
    if isinstance(chunk, ChatDone):
        return [speakable(c) for c in splitter.flush()]
    return []


@dataclass
class Call:
    """A function call the response is writing, or an MCP tool's call or approval request (``mcp``)."""

    entry: Entry
    output_index: int
    arguments: str = ""
    mcp: McpBinding | None = None
    job_id: str | None = None  # an MCP call the server is making
    closed: bool = False  # an MCP item already done


@dataclass
class Response:
    """One response's state from its start (speculative or not) to ``response.done``.

    A response started in the end-of-turn pause is :attr:`ResponseState.SPECULATIVE`: its engine
    results are held in :attr:`held` (only the first clause's synthesis starts, so its audio is ready
    sooner), and it gets its ``id`` when it goes on the wire, so ids count only responses a client
    sees.
    """

    id: str
    in_conversation: bool
    modalities: list[str]
    voice: str
    speed: float  # the session's audio.output.speed when the response began (OpenAI has no per-response one)
    output_format: AudioFormat
    instructions: str
    tools: list[Tool]
    tool_choice: str
    max_tokens: int  # the LLM's limit: the client's, or the server's cap where it asked for "inf"
    max_output_tokens: int | Literal["inf"]  # what the client asked for, as reported back
    metadata: dict[str, str] | None
    custom_input: list[Entry] | None
    state: ResponseState = ResponseState.IN_PROGRESS
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
    spoken: str = ""
    audio_samples: int = 0
    resampler: StreamResampler | None = None
    resampler_rate_hz: int = 0
    calls: dict[int, Call] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    # Speculative only: the turn it answers, results held until that turn commits, and the first
    # clause, whose synthesis starts early.
    answers_turn: str | None = None
    held: list[EngineResult] = field(default_factory=list)
    lookahead: ClauseSplitter = field(default_factory=ClauseSplitter)
    prespoken: str | None = None
    # The rate its audio is made at when that is not the output format's (a call's track: 24 kHz).
    playback_rate_hz: int | None = None
    # MCP tools the model may call (session/mcp.py), and the first call key of the LLM round under way
    # (each round of a response that called MCP tools numbers its calls from 0 again).
    mcp_tools: dict[str, McpBinding] = field(default_factory=dict)
    call_base: int = 0
    rounds: int = 0

    @property
    def audio(self) -> bool:
        return self.modalities == ["audio"]

    @property
    def rate_hz(self) -> int:
        """The rate its audio is made at."""
        return self.playback_rate_hz or self.output_format.rate_hz

    @property
    def audio_ms(self) -> int:
        return self.audio_samples * MS_PER_S // self.rate_hz

    def to(self, state: ResponseState) -> None:
        self.state = advance(self.state, state)

    def jobs(self) -> list[str]:
        calls = [c.job_id for c in self.calls.values() if c.job_id is not None]
        return [job for job in (self.llm_job, self.tts_job, *calls) if job is not None]


def part_ids(response: Response) -> dict[str, Any]:
    """The ids that name the response's message content part in its events."""
    assert response.message is not None
    return {
        "response_id": response.id,
        "item_id": response.message.id,
        "output_index": response.message_index,
        "content_index": 0,
    }


def response_body(response: Response, conversation_id: str, *, usage: bool = False) -> dict[str, Any]:
    """The ``response`` object of ``response.created`` / ``response.done``."""
    fmt = response.output_format
    return {
        "object": "realtime.response",
        "id": response.id,
        "status": response.state.wire_status,
        "status_details": response.status_details,
        "output": [e.item for e in response.output],
        "conversation_id": conversation_id if response.in_conversation else None,
        "output_modalities": response.modalities,
        "max_output_tokens": response.max_output_tokens,
        "audio": {
            "output": {
                "format": {"type": fmt.value, **({"rate": PCM_RATE_HZ} if fmt is AudioFormat.PCM else {})},
                "voice": response.voice,
            }
        },
        "usage": usage_body(response) if usage else None,
        "metadata": response.metadata,
    }


def usage_body(response: Response) -> dict[str, Any]:
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
