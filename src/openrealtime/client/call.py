"""The assistant over a WebRTC call (``openrealtime assistant --transport webrtc``), against our server
or OpenAI's.

:class:`CallConnection` has the surface of :class:`~openrealtime.client.connection.RealtimeConnection`
that the :class:`~openrealtime.client.assistant.Assistant` uses (send and receive events as dicts,
append audio, close), over an aiortc peer connection:

- the offer goes to the calls endpoint of the URL's server (``wss://host/v1/realtime?model=m`` ->
  ``https://host/v1/realtime/calls``) as multipart ``sdp`` and ``session`` (the shape OpenAI's
  documentation and the official SDKs post; the key or an ``ek_`` as Bearer); the answer comes back
  as SDP;
- events travel on the ``oai-events`` data channel, which :meth:`CallConnection.connect` waits for;
- :meth:`~CallConnection.append_audio` queues PCM16 (24 kHz) on an audio track that sends it in
  paced 20 ms frames of 48 kHz Opus (silence when nothing is queued, as a microphone would);
- the server plays the answer on the remote track: each frame is handed to ``on_audio`` as PCM16 at
  24 kHz. There are no ``response.output_audio.delta`` events on a call, and the server truncates
  what the caller did not hear itself (reference 1.3), so the assistant sends no truncation.

ICE uses no STUN server (host candidates): loopback and a LAN connect directly, and a server with a
public address (OpenAI's) learns the client's address from its checks. aiortc is imported only here
(``pip install 'openrealtime[webrtc]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from openrealtime.audio.codec import float_to_pcm16, pcm16_to_float
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.client.audio_io import WIRE_RATE_HZ
from openrealtime.exceptions import ConnectionClosedError
from openrealtime.webrtc.media import FrameClock, audio_frame, mono
from openrealtime.webrtc.playback import FRAME_SAMPLES, TRACK_RATE_HZ

OPEN_TIMEOUT_S = 30.0  # POST, ICE and the data channel's open
DEFAULT_MODEL = "gpt-realtime"
CHANNEL_LABEL = "oai-events"

AudioSink = Callable[[bytes], None]


def calls_url(url: str) -> tuple[str, str]:
    """The calls endpoint of a realtime WebSocket URL, and the model it asks for.

    ``ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime`` -> ``http://127.0.0.1:8000/v1/realtime/calls``.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/calls"):
        path += "/calls"
    model = urllib.parse.parse_qs(parts.query).get("model", [DEFAULT_MODEL])[0]
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", "")), model


def multipart(fields: Mapping[str, tuple[str, str]]) -> tuple[bytes, str]:
    """``multipart/form-data`` of text parts (name -> (content type, text)); the body and its type."""
    boundary = "openrealtime" + secrets.token_hex(12)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\nContent-Type: {kind}\r\n\r\n{text}\r\n'
        for name, (kind, text) in fields.items()
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


def _post_offer(url: str, sdp: str, session: Mapping[str, Any], api_key: str | None) -> str:
    """POST the offer; the SDP answer. Blocking (run in a thread).

    Raises:
        ConnectionClosedError: The server refused the call (its error message in the reason).
    """
    fields = {"sdp": ("application/sdp", sdp), "session": ("application/json", json.dumps(session))}
    body, content_type = multipart(fields)
    headers = {"Content-Type": content_type}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    context = ssl.create_default_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=OPEN_TIMEOUT_S, context=context) as reply:
            return str(reply.read().decode())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            detail = json.loads(detail)["error"]["message"]
        raise ConnectionClosedError(None, f"the call was refused ({exc.code}): {detail}") from None


class MicrophoneTrack(MediaStreamTrack):
    """Sends what is queued (float32 at 48 kHz) in paced 20 ms frames; silence when nothing is."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[Samples] = deque()
        self._pending: Samples = np.zeros(0, dtype=np.float32)
        self._resampler = StreamResampler(WIRE_RATE_HZ, TRACK_RATE_HZ)
        self._clock = FrameClock()

    def say(self, pcm16: bytes) -> None:
        """Queue PCM16 at 24 kHz."""
        self._queue.append(self._resampler.process(pcm16_to_float(pcm16)))

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._clock.tick()
        while self._pending.size < FRAME_SAMPLES and self._queue:
            self._pending = np.concatenate([self._pending, self._queue.popleft()])
        frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        take = min(FRAME_SAMPLES, self._pending.size)
        frame[:take] = self._pending[:take]
        self._pending = self._pending[take:]
        return audio_frame(frame, pts)


class CallConnection:
    """One call: events on its data channel, the microphone on its track, the answer from the server's."""

    def __init__(self, pc: RTCPeerConnection, mic: MicrophoneTrack, on_audio: AudioSink | None) -> None:
        self._pc = pc
        self._mic = mic
        self._on_audio = on_audio
        self._channel = pc.createDataChannel(CHANNEL_LABEL)
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._opened = asyncio.Event()
        self._closed = False
        self._reader: asyncio.Task[None] | None = None
        self._channel.on("open", self._opened.set)
        self._channel.on("message", self._on_message)
        self._channel.on("close", self._on_close)
        pc.on("track", self._on_track)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        api_key: str | None = None,
        on_audio: AudioSink | None = None,
        session: Mapping[str, Any] | None = None,
    ) -> CallConnection:
        """Call the server of realtime URL ``url``; returns once the events' channel is open.

        Args:
            url: The realtime WebSocket URL (its model goes into the call's session).
            api_key: The key or an ``ek_``.
            on_audio: Gets the answer's audio, PCM16 at 24 kHz, 20 ms at a time.
            session: The call's session config (``type`` and ``model`` are filled in).

        Raises:
            ConnectionClosedError: The call was refused.
            TimeoutError: It did not connect within ``OPEN_TIMEOUT_S``.
        """
        endpoint, model = calls_url(url)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        mic = MicrophoneTrack()
        pc.addTrack(mic)
        conn = cls(pc, mic, on_audio)
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                await pc.setLocalDescription(await pc.createOffer())
                config = {"type": "realtime", "model": model, **(session or {})}
                sdp = pc.localDescription.sdp
                answer = await asyncio.to_thread(_post_offer, endpoint, sdp, config, api_key)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
                await conn._opened.wait()
        except BaseException:
            await conn.close()
            raise
        return conn

    def _on_message(self, message: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            event = json.loads(message)
            if isinstance(event, dict):
                self._events.put_nowait(event)

    def _on_close(self) -> None:
        self._closed = True
        self._events.put_nowait(None)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._listen(track))

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = StreamResampler(TRACK_RATE_HZ, WIRE_RATE_HZ)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                pcm16 = float_to_pcm16(resampler.process(mono(frame)))
                if self._on_audio is not None and pcm16:
                    self._on_audio(pcm16)

    async def send(self, event: Mapping[str, Any]) -> None:
        if self._closed or self._channel.readyState != "open":
            raise ConnectionClosedError(None, "the call has ended")
        self._channel.send(json.dumps(event))

    async def append_audio(self, pcm16: bytes, *, translation: bool = False) -> None:
        """Microphone audio (PCM16, 24 kHz) onto the call's track."""
        if self._closed:
            raise ConnectionClosedError(None, "the call has ended")
        self._mic.say(pcm16)

    async def recv(self) -> dict[str, Any]:
        event = None if self._closed and self._events.empty() else await self._events.get()
        if event is None:
            self._events.put_nowait(None)  # every later recv sees the end too
            raise ConnectionClosedError(None, "the call has ended")
        return event

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedError:
                return

    @property
    def close_code(self) -> int | None:
        return None  # WebRTC has no close code: the last error event says why

    async def close(self) -> None:
        self._closed = True
        self._events.put_nowait(None)
        await self._pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
