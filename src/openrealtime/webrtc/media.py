"""A call's audio, both ways: the :class:`~openrealtime.runtime.connection.MediaPort` of its connection.

**In:** aiortc decodes the caller's Opus in its own thread into 20 ms frames of 48 kHz signed 16-bit
stereo (``rtcrtpreceiver.py``). Each frame is mixed down to mono float32 and two of them (40 ms:
the end of a turn is noticed sooner than with 100 ms chunks, at 25 inputs a second) go to the session
as one input chunk
(:meth:`~openrealtime.runtime.connection.Connection.post_audio`); the session's own front end
resamples them to 16 kHz with one stateful resampler, as it does a WebSocket's 24 kHz.

**Out:** :class:`PlaybackTrack` is the call's outgoing audio track. aiortc's sender asks it for frame
after frame as fast as it answers (aiortc does not pace), so it paces itself: frame ``n`` leaves at
``start + n * 20 ms`` on the event loop's clock, from the :class:`~openrealtime.webrtc.playback.PlaybackQueue`
(silence when nothing is queued, so RTP stays continuous, as aiortc's own ``AudioStreamTrack``
does). What leaving a frame means (a response started or stopped) goes to the session at once.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from typing import TYPE_CHECKING

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from openrealtime.audio.types import Samples
from openrealtime.session.commands import PlayAudio, PlaybackCleared
from openrealtime.webrtc.playback import FRAME_SAMPLES, TRACK_RATE_HZ, PlaybackQueue

if TYPE_CHECKING:
    from openrealtime.runtime.connection import Connection

log = logging.getLogger(__name__)

FRAME_S = FRAME_SAMPLES / TRACK_RATE_HZ
FRAMES_PER_CHUNK = 2  # 40 ms of input per chunk handed to the session
# A loop that stalled longer than this does not send the frames it owes in a burst: the clock is moved
# on instead (the caller hears a gap, as it would have anyway, not a rush of audio).
MAX_LATE_S = 0.2
PCM16_SCALE = 32768.0
_TIME_BASE = fractions.Fraction(1, TRACK_RATE_HZ)


def mono(frame: av.AudioFrame) -> Samples:
    """One decoded frame as mono float32 (the channels averaged)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mixed = data.astype(np.float32).mean(axis=0)
    else:
        mixed = data.reshape(-1, channels).astype(np.float32).mean(axis=1)
    if frame.format.name.startswith("s16"):
        mixed /= PCM16_SCALE
    return np.asarray(mixed, dtype=np.float32)


class FrameClock:
    """The media clock of an outgoing track: :meth:`tick` returns when the next 20 ms frame is due,
    with its ``pts``. A loop that stalled longer than ``MAX_LATE_S`` moves the clock on instead of
    owing a burst of frames."""

    def __init__(self) -> None:
        self._start: float | None = None
        self.pts = 0

    async def tick(self) -> int:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
            return self.pts
        self.pts += FRAME_SAMPLES
        wait = self._start + self.pts / TRACK_RATE_HZ - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -MAX_LATE_S:
            self._start -= wait  # a stalled loop: go on from now, not with a burst
        return self.pts


def audio_frame(samples: Samples, pts: int) -> av.AudioFrame:
    """One mono float32 frame at the track's rate as the s16 ``AudioFrame`` aiortc encodes."""
    pcm = np.clip(np.rint(samples * PCM16_SCALE), -32768, 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = TRACK_RATE_HZ
    frame.pts = pts
    frame.time_base = _TIME_BASE
    return frame


class PlaybackTrack(MediaStreamTrack):
    """The call's outgoing audio: the session's speech, paced in 20 ms frames (silence between)."""

    kind = "audio"

    def __init__(self, queue: PlaybackQueue) -> None:
        super().__init__()
        self.queue = queue
        self._connection: Connection | None = None
        self._clock = FrameClock()

    def attach(self, connection: Connection | None) -> None:
        self._connection = connection

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._clock.tick()
        samples, notices = self.queue.next_frame()
        if self._connection is not None:
            for notice in notices:
                self._connection.post_playback(notice)
        return audio_frame(samples, pts)


class CallMedia:
    """The media port of one call: the playback track out, the caller's track in."""

    def __init__(self) -> None:
        self.queue = PlaybackQueue()
        self.track = PlaybackTrack(self.queue)
        self._connection: Connection | None = None
        self._reader: asyncio.Task[None] | None = None

    # --- MediaPort ---------------------------------------------------------------------------------

    def attach(self, connection: Connection) -> None:
        self._connection = connection
        self.track.attach(connection)

    def detach(self) -> None:
        """Forget the connection (the call ended): it and its session are then freed by reference
        counting, not left in a cycle for the garbage collector (issue 10)."""
        self._connection = None
        self.track.attach(None)

    def play(self, command: PlayAudio) -> None:
        self.queue.play(command.response_id, command.item_id, command.samples)

    def end(self, response_id: str) -> None:
        self.queue.end(response_id)

    def clear(self) -> PlaybackCleared:
        return self.queue.clear()

    def hold(self, held: bool) -> None:
        self.queue.hold(held)

    # --- the caller's audio ------------------------------------------------------------------------

    def listen(self, track: MediaStreamTrack) -> None:
        """Start reading the caller's audio track (one: a second replaces the first)."""
        if self._reader is not None:
            self._reader.cancel()
        self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        chunk = np.zeros(FRAME_SAMPLES * FRAMES_PER_CHUNK, dtype=np.float32)
        filled = 0
        rate_hz = TRACK_RATE_HZ
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return  # the caller's track ended (hang-up, a vanished peer)
            assert isinstance(frame, av.AudioFrame)
            samples = mono(frame)
            if frame.sample_rate != rate_hz or filled + samples.size > chunk.size:
                filled = self._post(chunk, filled, rate_hz)
                rate_hz = frame.sample_rate
                if samples.size > chunk.size:
                    chunk = np.zeros(samples.size, dtype=np.float32)
            chunk[filled : filled + samples.size] = samples
            filled += samples.size
            if filled >= FRAME_SAMPLES * FRAMES_PER_CHUNK:
                filled = self._post(chunk, filled, rate_hz)

    def _post(self, chunk: Samples, filled: int, rate_hz: int) -> int:
        if filled and self._connection is not None:
            self._connection.post_audio(chunk[:filled].copy(), rate_hz)
        return 0

    async def stop(self) -> None:
        """Stop both tracks (at the end of the call)."""
        self.track.stop()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])  # never raises: the caller's own cancellation stays its own
