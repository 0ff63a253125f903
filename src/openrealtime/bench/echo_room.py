"""``bench turns`` part 3's room and referee (issue 13), pure: no sockets, no clock.

:class:`Speakerphone` is a client's player and the room between its speaker and its microphone. It
plays every answer it receives, in order, from the moment its audio arrives (after what it is still
playing), and stops as a client written for the Realtime API does when an answer it is playing is
cancelled (``response.done``, ``cancelled``): it drops what it still held, of every answer, and says
how much of each item it had played, for the ``conversation.item.truncate`` the client then sends.
Its microphone hears what it played ``ROOM_DELAY_MS`` later at -6 dB with two reflections.

:class:`Referee` says whose each turn the server heard was: the user's (its speech overlaps the
user's voice) or the echo's, and what each did: cancelled an answer, or got one. A harm done before
the user spoke is always the echo's. A user's interruption with a pause in it ("Wait, ... can you
say that again?") makes two turns of the user's, the second cancelling the answer to the first: that
is the user, not the echo.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.audio.types import Samples
from openrealtime.bench.speech import WIRE_RATE_HZ

MS_PER_S = 1000
CHUNK_MS = 20
CHUNK = WIRE_RATE_HZ * CHUNK_MS // MS_PER_S
ECHO_GAIN = 0.5  # -6 dB
ROOM_DELAY_MS = 150  # the player's buffer, the speaker, the air and the microphone
REFLECTIONS = ((30, 0.25), (70, 0.12))  # (ms after the direct sound, gain relative to it)
# A room more like a real one (``room="reverberant"``): the same paths, then a reverberant tail that
# dies away by 60 dB in REVERB_RT60_MS, holding REVERB_SHARE of the echo's energy; a loudspeaker that
# distorts a little (a cubic term: about 1 % at full scale); a microphone's noise floor.
REVERB_RT60_MS = 400
REVERB_SHARE = 0.3
DISTORTION = 0.05
NOISE_DBFS = -65.0
ROOMS = ("bench", "reverberant")


def impulse_response(room: str = "bench", seed: int = 0) -> Samples:
    """The room's response at the wire rate, from a sample played to what the microphone hears."""
    paths = np.zeros(WIRE_RATE_HZ * (ROOM_DELAY_MS + REVERB_RT60_MS + 100) // MS_PER_S, np.float32)
    for after_ms, gain in ((0, 1.0), *REFLECTIONS):
        paths[WIRE_RATE_HZ * (ROOM_DELAY_MS + after_ms) // MS_PER_S] += gain
    if room == "reverberant":
        start = WIRE_RATE_HZ * (ROOM_DELAY_MS + 10) // MS_PER_S
        t = np.arange(paths.size - start) / WIRE_RATE_HZ
        tail = np.random.default_rng(seed).standard_normal(t.size) * 10 ** (-3 * t / (REVERB_RT60_MS / MS_PER_S))
        direct = float(paths @ paths)
        tail *= np.sqrt(REVERB_SHARE / (1 - REVERB_SHARE) * direct / float(tail @ tail))
        paths[start:] += tail.astype(np.float32)
    else:
        paths = paths[: WIRE_RATE_HZ * (ROOM_DELAY_MS + REFLECTIONS[-1][0]) // MS_PER_S + 1]
    return ECHO_GAIN * paths


@dataclass
class _Queued:
    item_id: str
    samples: Samples


class Speakerphone:
    """The client's player and the room between its speaker and its microphone."""

    def __init__(self, room: str = "bench") -> None:
        self._queue: deque[_Queued] = deque()
        self.room = room
        self._response = impulse_response(room)
        self._recent: deque[Samples] = deque(maxlen=self._response.size // CHUNK + 2)
        self._noise = np.random.default_rng(1)
        self.played: dict[str, int] = {}  # item id -> samples played (wire rate)
        self.played_samples = 0

    def receive(self, event: dict[str, Any]) -> None:
        """A ``response.output_audio.delta``: queued after what the player still holds."""
        self._queue.append(_Queued(event["item_id"], pcm16_to_float(base64.b64decode(event["delta"]))))

    @property
    def playing(self) -> bool:
        return bool(self._queue)

    def holds(self, item_id: str) -> bool:
        """Whether audio of ``item_id`` is still queued (being played or to play)."""
        return any(q.item_id == item_id for q in self._queue)

    def stop(self) -> dict[str, int]:
        """Drop everything queued; the items cut short, with the milliseconds of each played."""
        cut = {q.item_id: self.played.get(q.item_id, 0) * MS_PER_S // WIRE_RATE_HZ for q in self._queue}
        self._queue.clear()
        return cut

    def tick(self) -> Samples:
        """Play the next 20 ms (silence where nothing is queued); what the microphone hears of the
        speaker in that chunk."""
        out = np.zeros(CHUNK, np.float32)
        filled = 0
        while filled < CHUNK and self._queue:
            head = self._queue[0]
            take = min(CHUNK - filled, head.samples.size)
            out[filled : filled + take] = head.samples[:take]
            filled += take
            self.played[head.item_id] = self.played.get(head.item_id, 0) + take
            if take == head.samples.size:
                self._queue.popleft()
            else:
                head.samples = head.samples[take:]
        self.played_samples += filled
        self._recent.append(out)
        return self.echo()

    def echo(self) -> Samples:
        """What the microphone hears of the speaker in the chunk just played."""
        history = np.concatenate(self._recent)
        if self.room == "bench":  # a few paths: added directly
            echo = np.zeros(CHUNK, np.float32)
            for lag in np.flatnonzero(self._response):
                lo = history.size - CHUNK - lag
                if lo + CHUNK > 0:
                    part = history[max(0, lo) : lo + CHUNK]
                    echo[CHUNK - part.size :] += self._response[lag] * part
            return echo
        played = history - DISTORTION * history**3
        size = 1 << int(np.ceil(np.log2(played.size + self._response.size)))
        heard = np.fft.irfft(np.fft.rfft(played, size) * np.fft.rfft(self._response, size), size)
        noise = self._noise.standard_normal(CHUNK) * 10 ** (NOISE_DBFS / 20)
        return (heard[played.size - CHUNK : played.size] + noise).astype(np.float32)


@dataclass
class HeardTurn:
    """A turn the server heard: its span on the input (ms, as the server counts) and what it did."""

    item_id: str
    start_ms: int
    end_ms: int | None = None
    cancels_ms: list[int] = field(default_factory=list)  # where it cancelled an answer
    answers: int = 0  # answers given to it
    early: bool = False  # it did harm before the user spoke: the echo's, whatever its span

    @property
    def harmed(self) -> bool:
        return bool(self.cancels_ms or self.answers)


class Referee:
    """Whose each turn was, from the server's events and where the client's input stood at each.

    Args:
        asked: The answers the bench asked for itself (``response.create``): not a turn's doing.
    """

    def __init__(self, asked: set[str]) -> None:
        self.asked = asked
        self.turns: list[HeardTurn] = []
        self.user_ms: tuple[int, int] | None = None  # the user's voice, first to last voiced sample

    def heard(self, event: dict[str, Any], at_ms: int) -> None:
        """A server event, received when the client had sent ``at_ms`` of input."""
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self.turns.append(HeardTurn(event["item_id"], event["audio_start_ms"]))
        elif kind == "input_audio_buffer.speech_stopped":
            for turn in self.turns:
                if turn.item_id == event["item_id"]:
                    turn.end_ms = event["audio_end_ms"]
        elif kind == "response.created" and self.turns and event["response"]["id"] not in self.asked:
            self._harm(self.turns[-1], at_ms).answers += 1
        elif kind == "response.done" and self.turns:
            response = event["response"]
            if (response.get("status_details") or {}).get("reason") == "turn_detected":
                self._harm(self.turns[-1], at_ms).cancels_ms.append(at_ms)

    def _harm(self, turn: HeardTurn, at_ms: int) -> HeardTurn:
        if self.user_ms is None or at_ms < self.user_ms[0]:
            turn.early = True
        return turn

    def is_user(self, turn: HeardTurn) -> bool:
        if self.user_ms is None or turn.early:
            return False
        # A turn still going at the trial's end runs on past the user's voice.
        return turn.start_ms <= self.user_ms[1] and (turn.end_ms is None or turn.end_ms >= self.user_ms[0])

    @property
    def self_interruptions(self) -> int:
        """Turns of the echo's that cancelled an answer or got one."""
        return sum(1 for t in self.turns if t.harmed and not self.is_user(t))

    @property
    def user_heard(self) -> bool:
        """The user's speech cancelled an answer or got one."""
        return any(t.harmed and self.is_user(t) for t in self.turns)

    def report(self, origin_ms: int) -> list[dict[str, Any]]:
        """Each turn, whose it was, its span and what it did, in seconds from ``origin_ms``."""

        def s(ms: int | None) -> float | None:
            return round((ms - origin_ms) / MS_PER_S, 2) if ms is not None else None

        out: list[dict[str, Any]] = []
        if self.user_ms is not None:
            out.append({"whose": "user's voice", "start_s": s(self.user_ms[0]), "end_s": s(self.user_ms[1])})
        for t in self.turns:
            whose = "user" if self.is_user(t) else "echo"
            cancels = [s(ms) for ms in t.cancels_ms]
            out.append(
                {
                    "whose": whose,
                    "start_s": s(t.start_ms),
                    "end_s": s(t.end_ms),
                    "cancels_s": cancels,
                    "answers": t.answers,
                }
            )
        return out

    def user_cancel_ms(self) -> int | None:
        """Where the user's speech first cancelled an answer (the input's ms), if it did."""
        cancels = [ms for t in self.turns if self.is_user(t) for ms in t.cancels_ms]
        return min(cancels) if cancels else None
