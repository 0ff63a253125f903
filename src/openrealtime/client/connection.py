"""A thin async WebSocket connection to any Realtime server (ours or OpenAI's)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection

from openrealtime.exceptions import ConnectionClosedError


class RealtimeConnection:
    """Send client events as dicts, receive server events as the wire's dicts.

    Observers get those dicts as they came; the client's decisions read them typed, through
    :func:`~openrealtime.protocol.codec.server_event_from_dict` (lenient: unknown fields and types kept).
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    @classmethod
    async def connect(cls, url: str, *, api_key: str | None = None, headers: Mapping[str, str] | None = None) -> Self:
        """Open ``url`` (``ws://`` or ``wss://``), with ``Authorization: Bearer`` if a key is given."""
        extra = dict(headers or {})
        if api_key:
            extra["Authorization"] = f"Bearer {api_key}"
        ws = await websockets.connect(url, additional_headers=extra, max_size=None, compression=None)
        return cls(ws)

    async def send(self, event: Mapping[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps(event))
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise ConnectionClosedError(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from exc

    async def append_audio(self, pcm16: bytes, *, translation: bool = False) -> None:
        kind = "session.input_audio_buffer.append" if translation else "input_audio_buffer.append"
        await self.send({"type": kind, "audio": base64.b64encode(pcm16).decode("ascii")})

    async def recv(self) -> dict[str, Any]:
        try:
            frame = await self._ws.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise ConnectionClosedError(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from exc
        event: dict[str, Any] = json.loads(frame)
        return event

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def close(self) -> None:
        await self._ws.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
