"""``openrealtime bench turns`` part 3: the answer heard back through the microphone (issue 13).

**The client.** The bench is a client written for the Realtime API on a speakerphone
(:class:`~openrealtime.bench.echo_room.Speakerphone`): it plays every answer's audio deltas at real
time from the moment they arrive, after what it still plays; when an answer it is playing is
cancelled (``response.done``, ``cancelled``) it stops its player, drops what it held and tells the
server what it did not play (``conversation.item.truncate`` with the milliseconds it played of each
item cut short), then plays the next answer. Its microphone hears what it played
``ROOM_DELAY_MS`` later at -6 dB with two reflections, mixed into the 20 ms chunks it streams at real
time. In half of the trials the user also speaks a real interruption over it, at full level,
``USER_AT_MS`` after the answer's first audio.

**Reported** per barge-in mode, from the events (the
:class:`~openrealtime.bench.echo_room.Referee` says whose each turn the server heard was):

* **self-interruptions per minute** of answer played (all trials): turns of the echo's that
  cancelled an answer or got one. The user's own turns are not counted (an interruption with a
  pause in it makes two, the second cancelling the answer to the first);
* **missed real interruptions**: trials with the user whose speech neither cancelled an answer nor
  got one;
* **onset → cancel** of the real interruptions: from the chunk holding their first voiced sample to
  the cancel.

Run it twice to see what the echo canceller does: with ``OPENREALTIME_ECHO_CANCELLATION=1`` and
without (the server's default, off), or ``serve --echo-cancellation`` behind ``--url``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.types import Samples
from openrealtime.bench.configured import Items, configured_session, wait_until
from openrealtime.bench.echo_room import (
    CHUNK,
    CHUNK_MS,
    ECHO_GAIN,
    MS_PER_S,
    REFLECTIONS,
    REVERB_RT60_MS,
    REVERB_SHARE,
    ROOM_DELAY_MS,
    Referee,
    Speakerphone,
)
from openrealtime.bench.interruptions import INSTRUCTIONS, INTERRUPTIONS, MODES, QUESTIONS, VOICED_FLOOR, Mode
from openrealtime.bench.report import distribution, progress
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.client.connection import RealtimeConnection

USER_AT_MS = 2500  # after the answer's first audio
TRIAL_MAX_S = 25.0  # a trial lasts at most this long from the answer's first audio
AFTER_S = 2.0  # silence (and echo tail) after the last answer stops playing
FIRST_AUDIO_WAIT_S = 60.0
SETTLE_WAIT_S = 30.0


class EchoSession:
    """One realtime session on a speakerphone: the events read, the answers played, the input sent."""

    def __init__(self, conn: RealtimeConnection, mode: Mode, room: str = "bench") -> None:
        self._conn = conn
        self.mode = mode
        self.phone = Speakerphone(room)
        self.referee = Referee(set())
        self.sent = 0  # input samples sent on this connection (wire rate): the server's input clock
        self._items = Items()
        self._created: list[str] = []
        self._done: dict[str, dict[str, Any]] = {}
        self._audio: set[str] = set()
        self._truncate: dict[str, int] = {}  # items the player cut short -> ms played, to tell the server
        self._changed = asyncio.Event()
        self._questions = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, mode: Mode, *, api_key: str | None = None, room: str = "bench"
    ) -> AsyncIterator[EchoSession]:
        opened = configured_session(
            url, lambda conn: cls(conn, mode, room), instructions=INSTRUCTIONS, turn_detection=mode.turn_detection
        )
        async with opened as session:
            yield session

    @property
    def sent_ms(self) -> int:
        return self.sent * MS_PER_S // WIRE_RATE_HZ

    async def read_events(self) -> None:
        async for event in self._conn:
            kind = event.get("type")
            self.referee.heard(event, self.sent_ms)
            self._items.heard(event)
            if kind == "response.created":
                self._created.append(event["response"]["id"])
            elif kind == "response.output_audio.delta":
                self._audio.add(event["response_id"])
                self.phone.receive(event)
            elif kind == "response.done":
                response = event["response"]
                self._done[response["id"]] = response
                playing = any(self.phone.holds(o.get("id", "")) for o in response.get("output") or [])
                if response.get("status") == "cancelled" and playing:
                    self._truncate.update(self.phone.stop())  # a client stops its player at the cancel
            self._changed.set()

    async def _until(self, condition: Any, timeout_s: float = SETTLE_WAIT_S) -> None:
        await wait_until(self._changed, condition, timeout_s)

    async def send_mic(self, chunk: Samples) -> None:
        await self._conn.append_audio(float_to_pcm16(np.clip(chunk, -1, 1)))
        self.sent += chunk.size

    async def tell_truncations(self) -> None:
        """``conversation.item.truncate`` for each item the player cut short, with what it played."""
        cut, self._truncate = self._truncate, {}
        for item_id, played_ms in cut.items():
            truncate = {"item_id": item_id, "content_index": 0, "audio_end_ms": played_ms}
            await self._conn.send({"type": "conversation.item.truncate", **truncate})

    async def ask(self) -> str:
        """Ask a question that gets a long spoken answer; its response id once created."""
        question = QUESTIONS[self._questions % len(QUESTIONS)]
        self._questions += 1
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
        await self._conn.send({"type": "conversation.item.create", "item": item})
        created = len(self._created)
        self.referee = Referee(self.referee.asked)
        await self._conn.send({"type": "response.create"})
        await self._until(lambda: len(self._created) > created)
        answer = self._created[created]
        self.referee.asked.add(answer)
        return answer

    def answering(self) -> bool:
        return any(r not in self._done for r in self._created)

    async def settle(self) -> None:
        """Stop the player, cancel what still runs, delete every item and clear the input: the next
        trial starts afresh."""
        self._truncate.update(self.phone.stop())
        for response_id in self._created:
            if response_id not in self._done:
                await self._conn.send({"type": "response.cancel", "response_id": response_id})
        await self._until(lambda: all(r in self._done for r in self._created))
        await self.tell_truncations()  # after the cancels: a truncate also cancels what still speaks
        await self._items.forget(self._conn, self._until)


@dataclass
class EchoTrial:
    mode: str
    user: bool  # the user spoke a real interruption over the echo
    played_s: float  # of answers heard, all of them
    self_interruptions: int
    user_heard: bool  # the user's speech cancelled an answer or got one
    onset_to_cancel_s: float | None
    # Each turn the server heard, from the answer's first audio (s): whose, its span, what it did.
    turns: list[dict[str, Any]] = field(default_factory=list)


async def _stream_until(session: EchoSession, condition: Any, timeout_s: float) -> None:
    """Stream what the microphone hears (the room, nothing else) at real time until ``condition``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for tick in range(int(timeout_s * MS_PER_S / CHUNK_MS)):
        if condition():
            return
        await asyncio.sleep(max(0.0, started + tick * CHUNK_MS / MS_PER_S - loop.time()))
        await session.send_mic(session.phone.tick())
    raise TimeoutError


async def run_echo_trial(session: EchoSession, user: Samples | None) -> EchoTrial:
    """One question answered out loud into the room, with or without the user interrupting; every
    answer after it (to the user, or to the echo) is played too, until the room is quiet."""
    loop = asyncio.get_running_loop()
    answer = await session.ask()
    played_before = session.phone.played_samples
    await _stream_until(session, lambda: answer in session._audio or answer in session._done, FIRST_AUDIO_WAIT_S)
    first_audio_ms = session.sent_ms
    voiced = np.flatnonzero(np.abs(user) > VOICED_FLOOR) if user is not None else np.zeros(0, np.int64)
    user_at = session.sent + USER_AT_MS * WIRE_RATE_HZ // MS_PER_S
    if user is not None and voiced.size:
        first, last = (user_at + int(voiced[i]) for i in (0, -1))
        session.referee.user_ms = (first * MS_PER_S // WIRE_RATE_HZ, last * MS_PER_S // WIRE_RATE_HZ)
    started = loop.time()
    quiet_since: float | None = None
    for tick in range(int(TRIAL_MAX_S * MS_PER_S / CHUNK_MS)):
        await asyncio.sleep(max(0.0, started + tick * CHUNK_MS / MS_PER_S - loop.time()))
        await session.tell_truncations()
        position = session.sent
        mic = session.phone.tick()
        if user is not None:
            lo, hi = max(position, user_at), min(position + CHUNK, user_at + user.size)
            if lo < hi:
                mic[lo - position : hi - position] += user[lo - user_at : hi - user_at]
        await session.send_mic(mic)
        talking = user is not None and position < user_at + user.size
        if session.phone.playing or talking or session.answering():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since > AFTER_S:
            break
    referee = session.referee
    cancel_ms = referee.user_cancel_ms()
    onset_ms = referee.user_ms[0] if referee.user_ms is not None else None
    cancel_s = (cancel_ms - onset_ms) / MS_PER_S if cancel_ms is not None and onset_ms is not None else None
    played_s = (session.phone.played_samples - played_before) / WIRE_RATE_HZ
    await session.settle()
    return EchoTrial(
        session.mode.name,
        user is not None,
        played_s,
        referee.self_interruptions,
        referee.user_heard,
        cancel_s,
        referee.report(first_audio_ms),
    )


async def run_echo(
    url: str, mode: Mode, users: list[Samples], *, api_key: str | None, room: str = "bench"
) -> list[EchoTrial]:
    """One trial without and one with the user for each interruption in ``users``, in ``room``."""
    trials: list[EchoTrial] = []
    async with EchoSession.open(url, mode, api_key=api_key, room=room) as session:
        plan: list[Samples | None] = [u for user in users for u in (None, user)]
        for index, user in enumerate(plan, 1):
            trial = await run_echo_trial(session, user)
            trials.append(trial)
            what = "with the user" if trial.user else "echo only"
            heard = f", user heard={trial.user_heard}" if trial.user else ""
            echoes = [t for t in trial.turns if t["whose"] == "echo" and (t["cancels_s"] or t["answers"])]
            if echoes:
                heard += " (the echo's turns from " + ", ".join(f"{t['start_s']} s" for t in echoes) + ")"
            progress(
                f"{mode.name} {what}",
                index,
                len(plan),
                f"{trial.played_s:.1f} s played, {trial.self_interruptions} self-interruptions{heard}",
            )
    return trials


def interruption_voices(limit: int | None) -> list[Samples]:
    from openrealtime.bench.turn_clips import synthesize

    texts = INTERRUPTIONS[:limit] if limit else INTERRUPTIONS
    return [synthesize(text, "piper", 1.0) for text in texts]


def summarize(trials: list[EchoTrial]) -> dict[str, Any]:
    modes: dict[str, Any] = {}
    for name in dict.fromkeys(t.mode for t in trials):
        mine = [t for t in trials if t.mode == name]
        spoken = [t for t in mine if t.user]
        minutes = sum(t.played_s for t in mine) / 60
        missed = [t for t in spoken if not t.user_heard]
        modes[name] = {
            "self_interruptions_per_minute": sum(t.self_interruptions for t in mine) / minutes if minutes else None,
            "self_interruptions": sum(t.self_interruptions for t in mine),
            "minutes_played": minutes,
            "missed_interruption_rate": len(missed) / len(spoken) if spoken else None,
            "onset_to_cancel_s": distribution([t.onset_to_cancel_s for t in spoken if t.onset_to_cancel_s is not None]),
            "trials": len(mine),
        }
    return modes


def table(modes: dict[str, Any]) -> str:
    lines = [
        f"Echo at -6 dB, {ROOM_DELAY_MS} ms room delay:",
        "",
        "| barge-in | self-interruptions / min (all answers played) | missed real interruptions "
        "| onset → cancel p50 / p95 (s) |",
        "|---|---|---|---|",
    ]
    for name, m in modes.items():
        rate = m["self_interruptions_per_minute"]
        missed = m["missed_interruption_rate"]
        dist = m["onset_to_cancel_s"]
        rate_text = (
            f"{rate:.1f} ({m['self_interruptions']} in {m['minutes_played']:.1f} min)" if rate is not None else "-"
        )
        missed_text = f"{missed:.0%}" if missed is not None else "-"
        cancel_text = f"{dist['p50']:.2f} / {dist['p95']:.2f}" if dist else "-"
        lines.append(f"| {name} | {rate_text} | {missed_text} | {cancel_text} |")
    return "\n".join(lines)


__all__ = [
    "ECHO_GAIN",
    "MODES",
    "REFLECTIONS",
    "REVERB_RT60_MS",
    "REVERB_SHARE",
    "ROOM_DELAY_MS",
    "EchoSession",
    "EchoTrial",
    "Speakerphone",
    "run_echo",
    "summarize",
    "table",
]
