"""The server's own voice removed from what comes back (issue 13: "the server never interrupts itself").

A speakerphone user's microphone hears the assistant: without help, its own answer is speech over the
answer, and barge-in cancels it (a self-interruption). The server knows every sample it sent, so it
removes them from the input before the VAD hears it, with the server's output as the canceller's
reference: ours (:mod:`~openrealtime.session.linear_echo`, the default) or WebRTC's AEC3 (the one
browsers run, through the ``pywebrtc-audio`` binding).

The reference is placed on the input's timeline (16 kHz samples of input, :class:`EchoReference`),
where a client written for the Realtime API plays it: its player starts each piece of speech when it
arrives, after what it is still playing, and plays it at the pace of speech. The session places each
piece there when it sends it (an audio delta over a WebSocket, a ``PlayAudio`` on a call), each
with the item it belongs to. It takes the rest back when the listener stops hearing it: all of it at
a barge-in or a clear (the client stops its player at the cancel; a call's track is cleared), only
that item's at a ``conversation.item.truncate`` or a WebSocket client's ``response.cancel`` (the
client stopped that answer; an answer placed after it, already playing, stays). A call's hold moves
the rest to its release. When the listener reaches the end of what was sent, the last milliseconds
the reference's resampler still holds end the speech there, so the speech after a pause starts where
it is placed and the speech before it has its whole reference. The placement is an estimate
(network, the player's buffer and the room add their delay); the canceller finds the rest itself
(AEC3 searches a few hundred milliseconds; ours is placed by the gate's delay, then tries what it
learned at nearby shifts), and :class:`~openrealtime.session.echo_gate.EchoGate`
silences the frames it lets through while it does (the onset of speech after a pause in the
answer): input that correlates with the reference at the room's delay.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from openrealtime.audio.codec import AudioOut
from openrealtime.audio.resample import Resampler, StreamResampler, quick_resampler
from openrealtime.audio.types import EMPTY, Samples
from openrealtime.protocol import server_events as se
from openrealtime.session.commands import HoldPlayback, PlayAudio
from openrealtime.session.echo_gate import EchoGate
from openrealtime.session.linear_echo import LinearEchoCanceller

RATE_HZ = 16_000  # the input timeline's rate (the VAD's and ASR's)
PLAYBACK_RATE_HZ = 24_000  # what PlayAudio carries
FRAME = RATE_HZ // 100  # AEC3 works in 10 ms frames
KEEP_BEHIND_S = 1  # reference audio kept behind the input's position (the AEC looks back itself)
# While the server's voice may come back (echo_audible) a turn needs this much speech to start, not the
# VAD's 64 ms: what the canceller lets through of an answer's onset is seldom longer (offline, 8
# sessions of three answers: 8 turns of the echo's at 64 ms, 4 at 96, 2 at 128, where the user's
# interruptions were heard as well at 96 and a few late at 128).
START_OVER_ECHO_MS = 96
# After the reference falls silent its echo still comes back (the room's delay and reverberation, the
# network): the canceller runs this much longer.
ECHO_TAIL_S = 1


def available(kind: str = "linear") -> bool:
    """Whether the canceller ``kind`` can run: ours always; AEC3 where its binding (``pywebrtc-audio``)
    is installed."""
    return kind == "linear" or importlib.util.find_spec("pywebrtc_audio") is not None


@dataclass
class _Piece:
    start: int  # input position (16 kHz samples) where the listener hears its first sample
    samples: Samples
    item_id: str | None = None  # the item it is the audio of


class EchoReference:
    """What the listener hears of the server's voice, placed on the input's timeline."""

    def __init__(self) -> None:
        self._pieces: deque[_Piece] = deque()
        self.end = 0  # where the last placed sample ends
        self._resampler: StreamResampler | None = None
        self._held: list[_Piece] = []  # what a hold took off the timeline, to put back at release
        self._last_item: str | None = None  # the item the resampler holds the tail of

    def play(self, samples: Samples, rate_hz: int, *, now: int, item_id: str | None = None) -> None:
        """Speech of ``item_id`` sent to the listener at input position ``now``: it plays after what is
        queued."""
        if self._resampler is not None and (self._resampler.in_rate_hz != rate_hz or now > self.end):
            self._end_speech()
        if self._resampler is None:
            self._resampler = StreamResampler(rate_hz, RATE_HZ)
        self._last_item = item_id
        out = self._resampler.process(samples)
        if out.size:
            self._place(_Piece(max(now, self.end), out, item_id))

    def _end_speech(self) -> None:
        """The listener runs dry (or a new rate comes): what the resampler still holds ends the speech,
        where it plays. Kept in it, it would start the next piece and push it late by the resampler's
        delay (a jump in the echo's delay at every restart, which AEC3 must find again), and the last
        milliseconds before a pause would have no reference."""
        assert self._resampler is not None
        if (tail := self._resampler.flush()).size:
            self._place(_Piece(self.end, tail, self._last_item))
        self._resampler = None

    def _place(self, piece: _Piece) -> None:
        self._pieces.append(piece)
        self.end = max(self.end, piece.start + piece.samples.size)

    def cut(self, *, now: int, item_id: str | None = None) -> list[_Piece]:
        """The listener stopped at ``now`` hearing ``item_id`` (a truncate, a client's cancel), or
        everything (``None``: a barge-in, a clear): what was still to play of it is gone; returned."""
        cut: list[_Piece] = []
        kept: deque[_Piece] = deque()
        for piece in self._pieces:
            end = piece.start + piece.samples.size
            if end <= now or (item_id is not None and piece.item_id != item_id):
                kept.append(piece)
            elif piece.start >= now:
                cut.append(piece)
            else:
                cut.append(_Piece(now, piece.samples[now - piece.start :], piece.item_id))
                kept.append(_Piece(piece.start, piece.samples[: now - piece.start], piece.item_id))
        self._pieces = kept
        if cut:
            self.end = max([now, *(p.start + p.samples.size for p in kept)])
            if self.end == now:
                self._resampler = None  # nothing plays on: the next answer starts afresh, no tail in it
        return cut

    def hold(self, *, now: int) -> None:
        """A call's playback is held at ``now``: what was to play waits for :meth:`release`."""
        self._held += self.cut(now=now)

    def release(self, *, now: int) -> None:
        """The held playback goes on from ``now``."""
        held, self._held = self._held, []
        for piece in held:
            self._place(_Piece(max(now, self.end), piece.samples, piece.item_id))

    def take(self, start: int, count: int) -> Samples:
        """The reference for input positions ``[start, start + count)`` (silence where nothing plays);
        what lies before ``start - KEEP_BEHIND_S`` is forgotten."""
        if self._resampler is not None and start + count > self.end:
            self._end_speech()  # the listener reaches the end of what was sent
        out = np.zeros(count, np.float32)
        for piece in self._pieces:
            lo, hi = max(start, piece.start), min(start + count, piece.start + piece.samples.size)
            if lo < hi:
                out[lo - start : hi - start] = piece.samples[lo - piece.start : hi - piece.start]
        horizon = start - KEEP_BEHIND_S * RATE_HZ
        while self._pieces and self._pieces[0].start + self._pieces[0].samples.size < horizon:
            self._pieces.popleft()
        return out


class EchoCanceller:
    """The input of one session, at 16 kHz, with the server's voice removed.

    Args:
        start: The input position of the first sample it will pass (the buffer's end).
        aec: The canceller, ``process(near, far)`` on float32 arrays of whole 10 ms frames (a test's),
            or by ``kind``: ``linear``, ours (:class:`~openrealtime.session.linear_echo.LinearEchoCanceller`,
            told the room's delays the gate finds), or ``aec3``
            (``pywebrtc_audio.EchoCanceller(sample_rate=16000)``).
    """

    def __init__(self, start: int, aec: Any = None, *, kind: str = "linear") -> None:
        if aec is None and kind == "linear":
            aec = LinearEchoCanceller()
        elif aec is None:  # an optional dependency: imported by name, so the checks pass without it
            aec = importlib.import_module("pywebrtc_audio").EchoCanceller(sample_rate=RATE_HZ)
        self._aec = aec
        self._ours = aec if isinstance(aec, LinearEchoCanceller) else None  # told more than AEC3 is
        self.reference = EchoReference()
        self.position = start  # input position of the next sample out
        self._resampler: Resampler | None = None  # the microphone's: little held back, as the front end's
        self._pending = EMPTY  # 16 kHz input short of a whole frame
        self._audible_until = start  # input position until which an echo may still come back
        self.gate = EchoGate()

    def process(self, samples: Samples, rate_hz: int) -> Samples:
        """Input at ``rate_hz`` in; 16 kHz out, whole frames, the server's voice removed."""
        if self._resampler is None or self._resampler.in_rate_hz != rate_hz:
            self._resampler = quick_resampler(rate_hz, RATE_HZ)
        near = np.concatenate([self._pending, self._resampler.process(samples)])
        whole = near.size - near.size % FRAME
        self._pending = near[whole:]
        return self._cancel(near[:whole])

    @property
    def echo_audible(self) -> bool:
        """Whether the server's voice may still be coming back into the input (it plays, or did within
        ``ECHO_TAIL_S``)."""
        return self.position < self._audible_until

    def heard(self, outputs: list[Any]) -> None:
        """Place what the listener hears of a session's ``outputs``: speech sent (a call's ``PlayAudio``,
        a WebSocket's audio deltas) plays after what is queued; a call's hold moves the rest."""
        now = self.position
        for output in outputs:
            if isinstance(output, PlayAudio):
                self.reference.play(output.samples, PLAYBACK_RATE_HZ, now=now, item_id=output.item_id)
            elif isinstance(output, se.OutputAudioDelta) and isinstance(output.audio, AudioOut):
                self.reference.play(output.audio.samples, output.audio.rate_hz, now=now, item_id=output.item_id)
            elif isinstance(output, HoldPlayback):
                (self.reference.hold if output.held else self.reference.release)(now=now)

    def silenced(self, item_id: str | None = None) -> None:
        """The listener stopped hearing ``item_id`` now (a truncate, a client's cancel), or everything
        (``None``: a barge-in, a clear)."""
        self.reference.cut(now=self.position, item_id=item_id)

    def flush(self) -> Samples:
        """Everything still held (a commit must hold every sample sent), the last frame padded."""
        tail = self._resampler.process(EMPTY, last=True) if self._resampler is not None else EMPTY
        self._resampler = None
        near = np.concatenate([self._pending, tail])
        self._pending = EMPTY
        if not near.size:
            return EMPTY
        padded = np.concatenate([near, np.zeros(-near.size % FRAME, np.float32)])
        return self._cancel(padded)[: near.size]

    def _cancel(self, near: Samples) -> Samples:
        if not near.size:
            return EMPTY
        far = self.reference.take(self.position, near.size)
        start, self.position = self.position, self.position + near.size
        if far.any():
            self._audible_until = self.position + ECHO_TAIL_S * RATE_HZ
        elif start >= self._audible_until:
            if self._ours is not None:
                self._ours.skip(near.size)  # ours keeps the reference's past: it is silence
            return near.astype(np.float32)  # nothing played of late: the input as it came
        near = near.astype(np.float32)
        if self._ours is not None:
            self._ours.align(self.gate.delays)  # where the gate hears the room's sound come back
        out = np.asarray(self._aec.process(near, far), dtype=np.float32)
        # Once ours has learned the room its output holds a voice over the answer whole: the gate judges
        # that; AEC3's output (and ours before it has learned) it must judge by the input.
        self.gate.judge_output = self._ours is not None and self._ours.learned
        return self.gate.process(near, far, out)  # what the canceller let through of the echo, silenced
