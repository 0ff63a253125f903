"""A thin async WebSocket connection to any Realtime server (ours or OpenAI's), and to the first of
several front doors that takes the session (:mod:`~openrealtime.client.failover`)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection

from openrealtime.client.failover import FIRST_EVENT_TIMEOUT_S, Failover, retry_elsewhere
from openrealtime.exceptions import ConnectionClosedError

log = logging.getLogger(__name__)

HTTP_SERVER_ERROR = 500


class RealtimeConnection:
    """Send client events as dicts, receive server events as the wire's dicts.

    Observers get those dicts as they came; the client's decisions read them typed, through
    :func:`~openrealtime.protocol.codec.server_event_from_dict` (lenient: unknown fields and types kept).

    Attributes:
        url: The URL connected to.
        door: Its index among the URLs given to :meth:`connect` (``0`` for one URL).
    """

    def __init__(self, ws: ClientConnection, url: str = "", door: int = 0) -> None:
        self._ws = ws
        self.url = url
        self.door = door
        self._pending: deque[dict[str, Any]] = deque()  # read while connecting, not yet received

    @classmethod
    async def connect(
        cls,
        url: str | Sequence[str] | Failover,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        after: int | None = None,
    ) -> Self:
        """Open ``url`` (``ws://`` or ``wss://``), with ``Authorization: Bearer`` if a key is given.

        Given several URLs (or a :class:`~openrealtime.client.failover.Failover`, or a list of one to
        retry a balancer), connect to the first door that takes the session: its ``session.created``
        is read here and is the first event :meth:`recv` returns. A refusal (close 1013 or 1012), a
        connect error or a ``5xx`` tries the next door, backing off between rounds; ``after``: the
        index of a door just lost, tried last.

        Raises:
            ConnectionClosedError: No door took the session within the policy's attempts.
        """
        if isinstance(url, str):
            return cls(await _open(url, api_key, headers), url)
        return await cls._connect_first(Failover.of(url), api_key, headers, after)

    @classmethod
    async def _connect_first(
        cls, failover: Failover, api_key: str | None, headers: Mapping[str, str] | None, after: int | None
    ) -> Self:
        why = "no attempt made"
        code: int | None = None
        for door, wait_s in failover.schedule(after=after):
            if wait_s:
                await asyncio.sleep(wait_s)  # backoff between rounds, not ordering
            url = failover.urls[door]
            try:
                conn = cls(await _open(url, api_key, headers), url, door)
            except websockets.InvalidStatus as exc:
                if exc.response.status_code < HTTP_SERVER_ERROR:
                    raise  # the request's fault (a 401, a 404): another door would say the same
                code, why = None, f"{url} answered HTTP {exc.response.status_code}"
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                code, why = None, f"{url}: {exc!r}"
            else:
                refusal = await conn._first_events()
                if refusal is None:
                    return conn
                code, why = refusal
            log.info("door %d refused or unreachable (%s); trying the next", door, why)
        raise ConnectionClosedError(code, f"no front door took the session in {failover.attempts} attempts: {why}")

    async def _first_events(self) -> tuple[int | None, str] | None:
        """Read up to ``session.created`` and keep it for :meth:`recv`; ``(close code, why)`` when
        the door refused in a way another door may not (:func:`~openrealtime.client.failover.retry_elsewhere`)."""
        try:
            async with asyncio.timeout(FIRST_EVENT_TIMEOUT_S):
                while True:
                    event = await self._receive()
                    self._pending.append(event)
                    if event.get("type") != "error":
                        return None
        except TimeoutError:
            await self.close()
            return None, "no session.created in time"
        except ConnectionClosedError as closed:
            if not retry_elsewhere(closed.code):
                return None  # the caller reads the error and the close, as from any connection
            errors = [e.get("error") for e in self._pending]
            message = next((e.get("message") for e in errors if isinstance(e, dict)), None)
            return closed.code, str(message or closed.reason or "closed")

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
        if self._pending:
            return self._pending.popleft()
        return await self._receive()

    async def _receive(self) -> dict[str, Any]:
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


async def _open(url: str, api_key: str | None, headers: Mapping[str, str] | None) -> ClientConnection:
    extra = dict(headers or {})
    if api_key:
        extra["Authorization"] = f"Bearer {api_key}"
    return await websockets.connect(url, additional_headers=extra, max_size=None, compression=None)
