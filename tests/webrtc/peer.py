"""An aiortc client peer for the call tests: a paced microphone track, the ``oai-events`` channel, and
the answer's audio recorded (48 kHz mono), as a browser would hold a call."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
from collections import deque
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from openrealtime.webrtc.media import mono

RATE_HZ = 48_000
FRAME = 960  # 20 ms


class Microphone(MediaStreamTrack):
    """Plays what is queued (float32 at 48 kHz) in paced 20 ms frames, silence when nothing is."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[np.ndarray] = deque()
        self._pending = np.zeros(0, dtype=np.float32)
        self._start: float | None = None
        self._pts = 0
        self.drained = asyncio.Event()
        self.drained.set()

    def say(self, samples: np.ndarray) -> None:
        self._queue.append(samples.astype(np.float32))
        self.drained.clear()

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE_HZ - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        while self._pending.size < FRAME and self._queue:
            self._pending = np.concatenate([self._pending, self._queue.popleft()])
        frame = np.zeros(FRAME, dtype=np.float32)
        take = min(FRAME, self._pending.size)
        frame[:take] = self._pending[:take]
        self._pending = self._pending[take:]
        if not self._pending.size and not self._queue:
            self.drained.set()
        pcm = (np.clip(frame, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        out = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        out.sample_rate = RATE_HZ
        out.pts = self._pts
        out.time_base = fractions.Fraction(1, RATE_HZ)
        return out


class CallPeer:
    """One client call: offer, post, events in and out, the answer's audio recorded."""

    def __init__(self, *, with_audio: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("oai-events")
        self.mic = Microphone()
        if with_audio:
            self.pc.addTrack(self.mic)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.heard: list[np.ndarray] = []  # the answer's audio, frame by frame (48 kHz mono)
        self.opened = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str | bytes) -> None:
        event = json.loads(message)
        self.seen.append(event)
        self.events.put_nowait(event)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._record(track))

    async def _record(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self.heard.append(mono(frame))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        return self.pc.localDescription.sdp

    async def call(
        self,
        http: httpx.AsyncClient,
        *,
        key: str | None = None,
        shape: str = "sdp",
        session: dict[str, Any] | None = None,
        path: str = "/v1/realtime/calls",
    ) -> httpx.Response:
        """Post the offer (``sdp``, ``json`` or ``multipart``) to ``path``; on 201 take the answer."""
        sdp = await self.offer()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if shape == "sdp":
            reply = await http.post(path, content=sdp, headers={**headers, "Content-Type": "application/sdp"})
        elif shape == "json":
            reply = await http.post(path, json={"sdp": sdp, "session": session}, headers=headers)
        else:
            files: dict[str, Any] = {"sdp": ("blob", sdp.encode(), "application/sdp")}
            if session is not None:
                files["session"] = ("blob", json.dumps(session).encode(), "application/json")
            reply = await http.post(path, files=files, headers=headers)
        if reply.status_code == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply.text, type="answer"))
        return reply

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def next(self, *types: str, timeout_s: float) -> dict[str, Any]:
        """The next event of one of ``types`` (others are skipped, kept in ``seen``)."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self.events.get()
                if not types or event["type"] in types:
                    return event

    def audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.float32)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
