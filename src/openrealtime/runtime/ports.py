"""What a :class:`~openrealtime.runtime.connection.Connection` is driven through: the transport its
frames go over, a call's media port, the sans-I/O session it binds, and the words it closes with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from openrealtime.audio.codec import AudioFormat
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import (
    Command,
    EngineResult,
    PlayAudio,
    PlaybackCleared,
    PlaybackResult,
    SessionInput,
)

if TYPE_CHECKING:
    from openrealtime.runtime.connection import Connection

MAX_CLOSE_REASON_BYTES = 123  # RFC 6455 section 5.5: a control frame's payload, less the 2-byte code


class Transport(Protocol):
    """A message transport: the server's WebSocket, or an in-memory pair in tests."""

    async def receive(self) -> str | bytes | None:
        """The next frame; ``None`` once the peer has gone."""
        ...

    async def send(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class MediaPort(Protocol):
    """A call's media: its track plays the session's audio (paced); its clock's results come back
    through the :class:`Connection` it is attached to."""

    def attach(self, connection: Connection) -> None:
        """Start posting input audio and playback results to ``connection``."""
        ...

    def play(self, command: PlayAudio) -> None: ...

    def end(self, response_id: str) -> None: ...

    def clear(self) -> PlaybackCleared:
        """Drop what is queued; what was played of each item it held."""
        ...

    def hold(self, held: bool) -> None:
        """Hold the playback where it is (silence goes out), or let it go on from there."""
        ...


class Session(Protocol):
    """What every sans-I/O session offers the runtime."""

    @property
    def input_format(self) -> AudioFormat:
        """The format the next input audio is decoded from (it changes with ``session.update``)."""
        ...

    def receive(self, event: SessionInput) -> None: ...

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None: ...

    def on_result(self, result: EngineResult) -> None: ...

    def on_playback(self, result: PlaybackResult) -> None: ...

    def drain(self) -> tuple[list[se.ServerEvent], Sequence[Command]]: ...


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame may carry (123 bytes of UTF-8); a longer reason
    makes the close fail and the client sees the connection drop without one."""
    data = text.encode()
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


def session_idle_message(idle_s: float) -> str:
    """The error that ends a session in which neither side sent anything for ``idle_s``."""
    return f"Session closed after {idle_s:g} seconds in which nothing was sent either way."


def session_expired_message(lifetime_s: float) -> str:
    """OpenAI's words at its 60 minutes, with this server's lifetime: whole minutes, else seconds."""
    if lifetime_s >= 60 and lifetime_s % 60 == 0:
        minutes = int(lifetime_s // 60)
        duration = f"{minutes} minute{'s' if minutes != 1 else ''}"
    else:
        duration = f"{lifetime_s:g} second{'s' if lifetime_s != 1 else ''}"
    return f"Your session hit the maximum duration of {duration}."
