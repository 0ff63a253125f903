"""What a voice assistant connects to and the session it asks for.

This module owns :class:`AssistantOptions` and :func:`session_update`, the one ``session.update``
(reference 9.1) that :class:`~openrealtime.client.assistant.Assistant` sends to every session it
opens, the first and each one after a reconnect, so a rebuilt conversation runs under the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openrealtime.client.audio_io import WIRE_RATE_HZ
from openrealtime.client.tools import ToolRegistry

DEFAULT_ASSISTANT_URL = "ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
DEFAULT_MUTE_COOLDOWN_MS = 800  # the reference tutorial's echo guard after the last assistant audio
DEFAULT_RECONNECT_MARGIN_S = 60.0  # reconnect this long before ``expires_at``
TOOL_CHOICE_MODES = ("auto", "none", "required")
PCM_FORMAT = {"type": "audio/pcm", "rate": WIRE_RATE_HZ}


@dataclass(frozen=True)
class AssistantOptions:
    """How the assistant connects and what session it asks for.

    Attributes:
        url: The realtime WebSocket URL (ours, or ``wss://api.openai.com/v1/realtime?model=...``).
        urls: More front doors of the same service, tried in turn after ``url`` when a door refuses
            (full, draining) or cannot be reached, and where a session ended by a drain resumes
            (:mod:`~openrealtime.client.failover`; WebSocket only). With none, ``url`` alone is
            retried with backoff, as a load balancer's.
        api_key: Sent as ``Authorization: Bearer``.
        voice: Output voice (``alloy``, ``marin``, ...); the server's default if ``None``.
        instructions: System prompt; the server's default if ``None``.
        transcription_model: Input transcription model (the user's side of the transcript).
        language: Language hint for input transcription.
        turn_detection: ``session.audio.input.turn_detection``; ``None`` for manual turns.
        tool_choice: ``session.tool_choice`` when tools are registered: ``auto``, ``none``,
            ``required``, or a tool's name (sent as ``{"type": "function", "name": ...}``).
        followup_tool_choice: ``tool_choice`` of the ``response.create`` after tool outputs. ``None``
            means ``"none"`` when ``tool_choice`` forces a call (a forced call is for the turn that
            asked for it; inherited, it would call the tool again forever) and the session's choice
            otherwise.
        mute_mic: Drop microphone audio while the assistant speaks and for ``mute_cooldown_ms`` after.
        mute_cooldown_ms: Echo-guard cooldown after the last played sample.
        reconnect_margin_s: Reconnect this long before the session's ``expires_at``.
        keep_audio: Keep each assistant item's audio (for :meth:`Assistant.answer_audio`).
        transport: ``websocket``, or ``webrtc``: each session a WebRTC call to the URL's server
            (its calls endpoint), the audio on the call's tracks (needs aiortc).
    """

    url: str = DEFAULT_ASSISTANT_URL
    urls: tuple[str, ...] = ()
    api_key: str | None = None
    voice: str | None = None
    instructions: str | None = None
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    language: str | None = "en"
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: {"type": "server_vad"})
    tool_choice: str | dict[str, Any] = "auto"
    followup_tool_choice: str | None = None
    mute_mic: bool = False
    mute_cooldown_ms: int = DEFAULT_MUTE_COOLDOWN_MS
    reconnect_margin_s: float = DEFAULT_RECONNECT_MARGIN_S
    keep_audio: bool = False
    transport: str = "websocket"


def session_update(options: AssistantOptions, tools: ToolRegistry | None = None) -> dict[str, Any]:
    """The ``session.update`` the assistant sends to every session it opens."""
    turn_detection = dict(options.turn_detection) if options.turn_detection is not None else None
    if turn_detection is not None and options.mute_mic:
        # With the microphone muted during answers, speech can never interrupt (reference 13).
        turn_detection.setdefault("interrupt_response", False)
    output: dict[str, Any] = {"format": PCM_FORMAT}
    if options.voice:
        output["voice"] = options.voice
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": PCM_FORMAT,
                "transcription": {"model": options.transcription_model, "language": options.language},
                "turn_detection": turn_detection,
            },
            "output": output,
        },
    }
    if options.instructions is not None:
        session["instructions"] = options.instructions
    if tools is not None and len(tools):
        session["tools"] = tools.definitions()
        choice = options.tool_choice
        if isinstance(choice, str) and choice not in TOOL_CHOICE_MODES:
            choice = {"type": "function", "name": choice}  # a tool's name forces that tool (reference 9.1)
        session["tool_choice"] = choice
    return {"type": "session.update", "session": session}
