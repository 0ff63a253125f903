"""The server's playback buffer of one call: a FIFO of speech handed out in 20 ms frames, with its
accounting (what was played of each item), pure (numpy only; no aiortc, no clock).

A session plays its answers through it (``PlayAudio``, ``EndOfAudio``, ``ClearPlayback``,
:mod:`~openrealtime.session.playback`); the call's track (:mod:`~openrealtime.webrtc.media`) takes
one frame every 20 ms of the media clock. A frame handed out is a frame played: the track holds no
look-ahead, so what was handed out and what the caller heard differ by the caller's jitter buffer only
(30 ms steady in Chromium, reference section 2). That makes the played count the truncation point of
a barge-in.

What the clock sees goes back to the session as results, each when its frame leaves:
``PlaybackStarted`` with the first sample of a response, ``PlaybackStopped`` when its last sample has
left and it has said it will send no more (a response still being spoken that runs dry, a voice slower
than real time, plays silence without stopping), and :meth:`PlaybackQueue.clear` answers with what
was played of each item it held.

:meth:`PlaybackQueue.hold` stops the clock of what is queued (silence goes out, nothing is dropped or
counted) while speech over the assistant is judged; released, playback goes on from the very sample
it stopped at (issue 13's barge-in that resumes after a backchannel).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.session.commands import (
    PlaybackCleared,
    PlaybackResult,
    PlaybackStarted,
    PlaybackStopped,
    PlayedItem,
)

TRACK_RATE_HZ = 48_000  # Opus's clock (RFC 7587): the rate of the call's audio in both directions
SPEECH_RATE_HZ = 24_000  # what the session's PlayAudio carries
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: one Opus packet
MS_PER_S = 1000


@dataclass
class _Segment:
    response_id: str
    item_id: str
    samples: Samples  # float32 at 48 kHz
    position: int = 0


@dataclass
class _Item:
    response_id: str
    played: int = 0  # samples at 48 kHz handed out


class PlaybackQueue:
    """Queued speech of one call, in order; resampled to the track's rate as it is queued."""

    def __init__(self) -> None:
        self._segments: deque[_Segment] = deque()
        self._items: OrderedDict[str, _Item] = OrderedDict()  # items with audio queued, until stopped
        self._resampler = StreamResampler(SPEECH_RATE_HZ, TRACK_RATE_HZ)
        self._resampling: tuple[str, str] | None = None  # the response and item the resampler holds a tail of
        self._started: set[str] = set()
        self._ended: set[str] = set()
        self._held = False

    @property
    def held(self) -> bool:
        """Playback is held: frames are silence and nothing queued moves."""
        return self._held

    def hold(self, held: bool) -> None:
        """Hold the playback where it is, or let it go on from there."""
        self._held = held

    @property
    def idle(self) -> bool:
        """Nothing is queued or playing."""
        return not self._segments and not self._items

    def play(self, response_id: str, item_id: str, samples_24k: Samples) -> None:
        """Queue speech of ``item_id`` (mono float32 at 24 kHz) after what is queued."""
        if self._resampling is not None and self._resampling != (response_id, item_id):
            self._flush_resampler()  # another item's speech: the last one's tail first
        self._resampling = (response_id, item_id)
        self._items.setdefault(item_id, _Item(response_id))
        self._push(response_id, item_id, self._resampler.process(samples_24k))

    def end(self, response_id: str) -> None:
        """``response_id`` sends no more audio: it stops once what is queued of it has played."""
        if self._resampling is not None and self._resampling[0] == response_id:
            self._flush_resampler()
        if any(item.response_id == response_id for item in self._items.values()):
            self._ended.add(response_id)

    def next_frame(self) -> tuple[Samples, list[PlaybackResult]]:
        """The next 20 ms (silence where nothing is queued), and what leaving it means."""
        frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        notices: list[PlaybackResult] = []
        filled = 0
        while filled < FRAME_SAMPLES and self._segments and not self._held:
            segment = self._segments[0]
            if segment.response_id not in self._started:
                self._started.add(segment.response_id)
                notices.append(PlaybackStarted(segment.response_id))
            take = min(FRAME_SAMPLES - filled, segment.samples.size - segment.position)
            frame[filled : filled + take] = segment.samples[segment.position : segment.position + take]
            segment.position += take
            filled += take
            self._items[segment.item_id].played += take
            if segment.position == segment.samples.size:
                self._segments.popleft()
        for response_id in sorted(self._ended) if not self._held else ():
            if not any(s.response_id == response_id for s in self._segments):
                notices += self._stopped(response_id)
        return frame, notices

    def clear(self) -> PlaybackCleared:
        """Drop everything queued; what was played of each item that had audio here, in order."""
        played = tuple(
            PlayedItem(item.response_id, item_id, item.played * MS_PER_S // TRACK_RATE_HZ)
            for item_id, item in self._items.items()
        )
        self._segments.clear()
        self._items.clear()
        self._started.clear()
        self._ended.clear()
        self._held = False  # nothing is left to hold
        self._resampler = StreamResampler(SPEECH_RATE_HZ, TRACK_RATE_HZ)  # its tail is unplayed audio too
        self._resampling = None
        return PlaybackCleared(played)

    def _stopped(self, response_id: str) -> list[PlaybackResult]:
        self._ended.discard(response_id)
        for item_id in [i for i, item in self._items.items() if item.response_id == response_id]:
            del self._items[item_id]
        started = response_id in self._started
        self._started.discard(response_id)
        return [PlaybackStopped(response_id)] if started else []

    def _flush_resampler(self) -> None:
        assert self._resampling is not None
        response_id, item_id = self._resampling
        self._push(response_id, item_id, self._resampler.flush())
        self._resampler = StreamResampler(SPEECH_RATE_HZ, TRACK_RATE_HZ)
        self._resampling = None

    def _push(self, response_id: str, item_id: str, samples: Samples) -> None:
        if samples.size:
            self._segments.append(_Segment(response_id, item_id, samples))
