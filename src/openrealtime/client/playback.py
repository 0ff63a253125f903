"""Playback of the assistant's answer, and how much of each item's audio was actually heard.

This module owns:

* :class:`PlaybackLedger`, pure bookkeeping: every audio item the client queues sits on one playback
  timeline (in samples); given the play position, it says how many samples of each item were played
  and received. A barge-in truncates an item to exactly that (reference 6.3: ``audio_end_ms`` is what
  was played of *that item*, clamped to what was received for it, never a wall-clock estimate).
* :class:`PlaybackCut` and :func:`interrupt`: a barge-in's stop, and what had been played of each item.
* Pausing: a player paused at ``speech_started`` (the ``adaptive`` barge-in, issue 13) plays silence
  and keeps its queue, so :meth:`Player.resume` goes on from the very sample it stopped at when the
  speech was not an interruption; audio that arrives meanwhile is queued after it.
* :class:`Player`, the protocol the assistant client plays through, and two implementations:
  :class:`ClockPlayer` advances the play position by a clock at real-time pace (files, tests,
  benchmarks: it plays "into the air"), and :class:`SpeakerPlayer` plays through the default output
  device with the optional ``sounddevice`` package, counting the samples handed to the device.

Audio is PCM16 mono at the wire rate (24 kHz), as ``response.output_audio.delta`` carries it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

WIRE_RATE_HZ = 24_000
BYTES_PER_SAMPLE = 2  # PCM16 mono
MS_PER_S = 1000
MIN_DRAIN_POLL_S = 0.01  # the shortest wait while a queue drains
SPEAKER_BLOCK_MS = 20  # audio handed to the output device per callback


@dataclass
class _Segment:
    item_id: str
    start: int  # position on the playback timeline, in samples
    samples: int


class PlaybackLedger:
    """Where each item's audio sits on the playback timeline, and how far playback has got.

    Pure: the play position is given to :meth:`advance_to` (by a clock or a device callback); nothing
    here reads a clock. Samples are counted at ``rate_hz``.

    Args:
        rate_hz: Sample rate of the audio being played.
    """

    def __init__(self, rate_hz: int = WIRE_RATE_HZ) -> None:
        self.rate_hz = rate_hz
        self._segments: deque[_Segment] = deque()  # queued, not yet fully played, in timeline order
        self._end = 0  # where the next queued audio starts
        self._position = 0  # how far playback has got
        self._received: dict[str, int] = {}
        self._played: dict[str, int] = {}  # samples of segments already retired (played or flushed)

    @property
    def position(self) -> int:
        """The play position on the timeline, in samples."""
        return self._position

    @property
    def end(self) -> int:
        """The end of the queued audio on the timeline, in samples."""
        return self._end

    @property
    def queued_samples(self) -> int:
        """Samples queued and not played yet."""
        return self._end - self._position

    def enqueue(self, item_id: str, samples: int) -> None:
        """Queue ``samples`` of ``item_id`` after everything already queued."""
        if samples <= 0:
            return
        self._received[item_id] = self._received.get(item_id, 0) + samples
        last = self._segments[-1] if self._segments else None
        if last is not None and last.item_id == item_id and last.start + last.samples == self._end:
            last.samples += samples
        else:
            self._segments.append(_Segment(item_id, self._end, samples))
        self._end += samples

    def advance_to(self, position: int) -> None:
        """Playback reached ``position`` (clamped to the queued audio; never moves backwards)."""
        self._position = max(self._position, min(position, self._end))
        while self._segments and self._segments[0].start + self._segments[0].samples <= self._position:
            done = self._segments.popleft()
            self._played[done.item_id] = self._played.get(done.item_id, 0) + done.samples

    def flush(self) -> list[str]:
        """Drop everything not played yet; returns the items that lost audio, in timeline order."""
        cut: list[str] = []
        for segment in self._segments:
            heard = max(0, self._position - segment.start)
            self._played[segment.item_id] = self._played.get(segment.item_id, 0) + heard
            if heard < segment.samples and segment.item_id not in cut:
                cut.append(segment.item_id)
        self._segments.clear()
        self._end = self._position
        return cut

    def played_samples(self, item_id: str) -> int:
        """Samples of ``item_id`` played so far."""
        played = self._played.get(item_id, 0)
        for segment in self._segments:
            if segment.item_id == item_id:
                played += min(segment.samples, max(0, self._position - segment.start))
        return played

    def received_samples(self, item_id: str) -> int:
        """Samples of ``item_id`` queued so far (including any later flushed)."""
        return self._received.get(item_id, 0)

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` played, clamped to the milliseconds received (both floored)."""
        played = min(self.played_samples(item_id), self.received_samples(item_id))
        return played * MS_PER_S // self.rate_hz

    def received_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` received (floored, as the server counts an item's length)."""
        return self.received_samples(item_id) * MS_PER_S // self.rate_hz


class Player(Protocol):
    """Where the assistant's audio goes. Every method is called from the event loop."""

    @property
    def ledger(self) -> PlaybackLedger:
        """The bookkeeping of what was queued and played (brought up to date by each call below)."""
        ...

    def play(self, item_id: str, pcm16: bytes) -> None:
        """Queue PCM16 audio of ``item_id`` after everything queued before."""
        ...

    def stop(self) -> list[str]:
        """Stop now and flush the queue; returns the items whose audio was cut. Ends a pause."""
        ...

    def pause(self) -> None:
        """Go silent now, keeping the queue and the play position (nothing if already paused)."""
        ...

    def resume(self) -> None:
        """Go on from the sample where :meth:`pause` stopped (nothing if not paused)."""
        ...

    @property
    def paused(self) -> bool:
        """Whether the player is paused."""
        ...

    def played_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` actually played, clamped to what was received for it."""
        ...

    @property
    def playing(self) -> bool:
        """Whether queued audio is still being played."""
        ...

    def idle_s(self) -> float:
        """Seconds since the last queued sample was played (0 while playing, ``inf`` before any)."""
        ...

    async def drained(self) -> None:
        """Return once everything queued has been played (or flushed)."""
        ...

    def close(self) -> None:
        """Release the output device, if any."""
        ...


@dataclass(frozen=True)
class PlaybackCut:
    """What playback had done when a barge-in stopped it.

    Attributes:
        cut: Items that lost queued audio, in timeline order.
        played_ms: Milliseconds played of each measured item, clamped to what was received.
        received_ms: Milliseconds received of each measured item.
    """

    cut: tuple[str, ...]
    played_ms: Mapping[str, int]
    received_ms: Mapping[str, int]


def interrupt(player: Player, measure: tuple[str, ...] = ()) -> PlaybackCut:
    """Stop ``player`` now and flush its queue, then read what was played of each cut item and of ``measure``.

    Reading after the stop is what makes the numbers exact: nothing more of them can play.
    """
    cut = tuple(player.stop())
    items = [*cut, *(i for i in measure if i not in cut)]
    ledger = player.ledger
    return PlaybackCut(
        cut=cut,
        played_ms={i: player.played_ms(i) for i in items},
        received_ms={i: ledger.received_ms(i) for i in items},
    )


class ClockPlayer:
    """Plays into the air: the play position advances with a clock, at real-time pace.

    Used for files, tests and benchmarks: a barge-in then truncates to what a listener would have
    heard. Playback starts when audio arrives and pauses (underruns) when the queue is empty.

    Args:
        rate_hz: Sample rate of the audio.
        clock: Seconds, monotonic; ``time.monotonic`` (the event loop's clock on Linux) by default.
            A test passes a fake one.
    """

    def __init__(self, rate_hz: int = WIRE_RATE_HZ, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ledger = PlaybackLedger(rate_hz)
        self._clock = clock
        self._anchor_s = clock()  # playback ran from _anchor_position at this time
        self._anchor_position = 0
        self._ever_played = False
        self._paused = False

    def _sync(self) -> float:
        now = self._clock()
        if self._paused:
            return now  # the play position stands still
        elapsed = self._ledger.rate_hz * (now - self._anchor_s)
        self._ledger.advance_to(self._anchor_position + math.floor(elapsed))
        return now

    @property
    def ledger(self) -> PlaybackLedger:
        self._sync()
        return self._ledger

    def play(self, item_id: str, pcm16: bytes) -> None:
        now = self._sync()
        if self._ledger.queued_samples == 0:  # idle (or never started): playback restarts now
            self._anchor_s, self._anchor_position = now, self._ledger.position
        self._ledger.enqueue(item_id, len(pcm16) // BYTES_PER_SAMPLE)
        self._ever_played = True

    def stop(self) -> list[str]:
        now = self._sync()
        cut = self._ledger.flush()
        self._anchor_s, self._anchor_position = now, self._ledger.position
        self._paused = False
        return cut

    def pause(self) -> None:
        self._sync()
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._anchor_s, self._anchor_position = self._clock(), self._ledger.position

    @property
    def paused(self) -> bool:
        return self._paused

    def played_ms(self, item_id: str) -> int:
        self._sync()
        return self._ledger.played_ms(item_id)

    @property
    def playing(self) -> bool:
        self._sync()
        return self._ledger.queued_samples > 0

    def idle_s(self) -> float:
        now = self._sync()
        if not self._ever_played:
            return math.inf
        if self._ledger.queued_samples > 0 or self._paused:
            return 0.0
        ended_s = self._anchor_s + (self._ledger.end - self._anchor_position) / self._ledger.rate_hz
        return max(0.0, now - ended_s)

    async def drained(self) -> None:
        remaining_s = self._remaining_s()
        while remaining_s > 0:  # paced by the clock; more audio may be queued while waiting
            await asyncio.sleep(max(MIN_DRAIN_POLL_S, remaining_s))
            remaining_s = self._remaining_s()

    def _remaining_s(self) -> float:
        self._sync()
        return self._ledger.queued_samples / self._ledger.rate_hz

    def close(self) -> None:
        self.stop()


class SpeakerPlayer:
    """Plays through the default output device (needs ``pip install sounddevice`` and PortAudio).

    The play position counts the samples handed to the device by its callback. At a stop, audio
    already handed over (the device latency, tens of milliseconds) still plays out, so that count is
    what the listener hears.

    Args:
        rate_hz: Sample rate of the audio.
        device: A ``sounddevice`` output device (index or name); the default device if ``None``.
    """

    def __init__(self, rate_hz: int = WIRE_RATE_HZ, *, device: int | str | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise SystemExit(
                "speaker output needs the 'sounddevice' package and PortAudio: "
                "pip install sounddevice (and apt-get install libportaudio2)"
            ) from exc
        self._ledger = PlaybackLedger(rate_hz)
        self._lock = threading.Lock()  # the device callback runs on PortAudio's thread
        self._queue: deque[memoryview] = deque()
        self._consumed = 0  # samples handed to the device
        self._ended_at_s: float | None = None
        self._paused = False  # the callback hands silence and takes nothing from the queue
        self._stream: Any = sd.RawOutputStream(
            samplerate=rate_hz,
            channels=1,
            dtype="int16",
            blocksize=rate_hz * SPEAKER_BLOCK_MS // MS_PER_S,
            device=device,
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        wanted = frames * BYTES_PER_SAMPLE
        written = 0
        with self._lock:
            while written < wanted and self._queue and not self._paused:
                head = self._queue[0]
                take = min(len(head), wanted - written)
                outdata[written : written + take] = head[:take]
                written += take
                if take == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
            if written:
                self._consumed += written // BYTES_PER_SAMPLE
                self._ledger.advance_to(self._consumed)
                if not self._queue:
                    self._ended_at_s = time.monotonic()
        outdata[written:wanted] = b"\x00" * (wanted - written)

    @property
    def ledger(self) -> PlaybackLedger:
        return self._ledger

    def play(self, item_id: str, pcm16: bytes) -> None:
        with self._lock:
            self._ledger.enqueue(item_id, len(pcm16) // BYTES_PER_SAMPLE)
            self._queue.append(memoryview(pcm16))

    def stop(self) -> list[str]:
        with self._lock:
            self._queue.clear()
            self._paused = False
            cut = self._ledger.flush()
            if cut:
                self._ended_at_s = time.monotonic()
            return cut

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def played_ms(self, item_id: str) -> int:
        with self._lock:
            return self._ledger.played_ms(item_id)

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def idle_s(self) -> float:
        with self._lock:
            if self._queue:
                return 0.0
            if self._ended_at_s is None:
                return math.inf
            return max(0.0, time.monotonic() - self._ended_at_s)

    async def drained(self) -> None:
        remaining_s = self._remaining_s()
        while remaining_s > 0:  # paced by the clock; more audio may be queued while waiting
            await asyncio.sleep(max(MIN_DRAIN_POLL_S, remaining_s))
            remaining_s = self._remaining_s()

    def _remaining_s(self) -> float:
        with self._lock:
            return self._ledger.queued_samples / self._ledger.rate_hz if self._queue else 0.0

    def close(self) -> None:
        self.stop()
        self._stream.stop()
        self._stream.close()
