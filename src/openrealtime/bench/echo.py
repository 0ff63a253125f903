"""``openrealtime bench turns`` part 3: the answer heard back through the microphone (issue 13).

**The room.** The bench is a speakerphone: it plays each answer's audio deltas at real time from the
moment they arrive (its player's queue), and its microphone hears what it played ``ROOM_DELAY_MS``
later at -6 dB with two reflections (``REFLECTIONS``), the whole mixed into the 20 ms chunks it
streams at real time. In half of the trials the user also speaks a real interruption over it, at full
level, ``USER_AT_MS`` after the answer's first audio. The player stops when the answer is cancelled
(``response.done`` with ``turn_detected``), as a client does.

**Reported** per barge-in mode, from the events:

* **self-interruptions per minute** of answer played, in the trials without the user: the answer
  cancelled by its own echo, or an answer given to a "turn" that was the echo;
* **missed real interruptions**: trials with the user in which the answer was neither cancelled nor
  followed by an answer to the interruption (of those the echo had not already stopped);
* **onset → cancel** of the real interruptions.

Run it twice to see what the echo canceller does: with ``OPENREALTIME_ECHO_CANCELLATION=1`` and
without (the server's default, off), or ``serve --echo-cancellation`` behind ``--url``.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16, pcm16_to_float
from openrealtime.audio.types import Samples
from openrealtime.bench.interruptions import INTERRUPTIONS, MODES, QUESTIONS, Mode, ProbeSession
from openrealtime.bench.report import distribution, progress
from openrealtime.bench.speech import WIRE_RATE_HZ

MS_PER_S = 1000
CHUNK = WIRE_RATE_HZ * 20 // MS_PER_S  # 20 ms
ECHO_GAIN = 0.5  # -6 dB
ROOM_DELAY_MS = 150  # the player's buffer, the speaker, the air and the microphone
REFLECTIONS = ((30, 0.25), (70, 0.12))  # (ms after the direct sound, gain relative to it)
USER_AT_MS = 2500  # after the answer's first audio
TRIAL_MAX_S = 25.0  # an answer is heard at most this long
AFTER_S = 2.0  # silence (and echo tail) after the answer stops playing
FIRST_AUDIO_WAIT_S = 30.0


class Speakerphone:
    """The client's player and the room between its speaker and its microphone."""

    def __init__(self) -> None:
        self._queue: deque[Samples] = deque()
        self._played: list[Samples] = []
        self.played_samples = 0

    def receive(self, event: dict[str, Any]) -> None:
        self._queue.append(pcm16_to_float(base64.b64decode(event["delta"])))

    def stop(self) -> None:
        self._queue.clear()

    @property
    def playing(self) -> bool:
        return bool(self._queue)

    def tick(self) -> Samples:
        """The next 20 ms the speaker plays (silence when nothing is queued) and the echo the microphone
        hears of everything played so far."""
        out = np.zeros(CHUNK, np.float32)
        filled = 0
        while filled < CHUNK and self._queue:
            head = self._queue[0]
            take = min(CHUNK - filled, head.size)
            out[filled : filled + take] = head[:take]
            filled += take
            if take == head.size:
                self._queue.popleft()
            else:
                self._queue[0] = head[take:]
        self.played_samples += filled
        self._played.append(out)
        return self.echo()

    def echo(self) -> Samples:
        """What the microphone hears of the speaker in the chunk just played."""
        history = np.concatenate(self._played[-20:])  # the last 400 ms is all the room keeps
        end = history.size
        echo = np.zeros(CHUNK, np.float32)
        for after_ms, gain in ((0, 1.0), *REFLECTIONS):
            lag = WIRE_RATE_HZ * (ROOM_DELAY_MS + after_ms) // MS_PER_S
            lo = end - CHUNK - lag
            if lo + CHUNK > 0:
                part = history[max(0, lo) : lo + CHUNK]
                echo[CHUNK - part.size :] += gain * part
        return (ECHO_GAIN * echo).astype(np.float32)


@dataclass
class EchoTrial:
    mode: str
    user: bool  # the user spoke a real interruption over the echo
    played_s: float  # of the answer heard
    self_interruptions: int
    cancelled: bool
    answered_after_onset: bool
    onset_to_cancel_s: float | None


async def run_echo_trial(session: ProbeSession, user: Samples | None) -> EchoTrial:
    """One question answered out loud into the room, with or without the user interrupting."""
    loop = asyncio.get_running_loop()
    speaker = Speakerphone()
    session.on_audio = speaker.receive
    question = QUESTIONS[session._questions % len(QUESTIONS)]
    session._questions += 1
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}
    await session._conn.send({"type": "conversation.item.create", "item": item})
    created = len(session._created)
    await session._conn.send({"type": "response.create"})
    await session._until(lambda: len(session._created) > created)
    answer = session._created[created]
    await session._silence_until(lambda: answer in session._audio or answer in session._done, FIRST_AUDIO_WAIT_S)
    started = loop.time()
    voiced = np.flatnonzero(np.abs(user) > 0.02) if user is not None else np.zeros(0, np.int64)
    user_at = USER_AT_MS * WIRE_RATE_HZ // MS_PER_S
    onset_at: float | None = None
    quiet_since: float | None = None
    for tick in range(int(TRIAL_MAX_S * MS_PER_S / 20)):
        await asyncio.sleep(max(0.0, started + tick * 0.02 - loop.time()))
        done = session._done.get(answer)
        if done is not None and done.get("status") == "cancelled":
            speaker.stop()  # the client stops its player at the cancel
        mic = speaker.tick()
        position = tick * CHUNK
        if user is not None:
            lo, hi = max(position, user_at), min(position + CHUNK, user_at + user.size)
            if lo < hi:
                mic[lo - position : hi - position] += user[lo - user_at : hi - user_at]
            if onset_at is None and voiced.size and position <= user_at + voiced[0] < position + CHUNK:
                onset_at = loop.time()
        await session._conn.append_audio(float_to_pcm16(np.clip(mic, -1, 1)))
        talking = user is not None and position < user_at + user.size
        if speaker.playing or talking or done is None:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since > AFTER_S:
            break
    done = session._done.get(answer)
    cancelled = bool(done is not None and (done.get("status_details") or {}).get("reason") == "turn_detected")
    others = [r for r in session._created[created:] if r != answer]
    answered_after = any(session._created_at[r] >= (onset_at or float("inf")) for r in others)
    cancel_s = session._done_at[answer] - onset_at if cancelled and onset_at is not None else None
    if user is not None and cancelled and onset_at is not None and cancel_s is not None and cancel_s < 0:
        cancel_s = None  # cancelled by the echo before the user spoke: a self-interruption
    selfish = 0
    if user is None:
        selfish = int(cancelled) + len(others)
    elif cancelled and cancel_s is None:
        selfish = 1
    session.on_audio = None
    if speaker.playing:  # stopped mid-answer at the cap: say how much was heard, as a client does
        await session._until(lambda: answer in session._done)
        output = session._done[answer].get("output") or [{}]
        if output[0].get("id"):
            ms = speaker.played_samples * MS_PER_S // WIRE_RATE_HZ
            truncate = {"item_id": output[0]["id"], "content_index": 0, "audio_end_ms": ms}
            await session._conn.send({"type": "conversation.item.truncate", **truncate})
    await session._settle()
    return EchoTrial(
        session.mode.name,
        user is not None,
        speaker.played_samples / WIRE_RATE_HZ,
        selfish,
        cancelled,
        answered_after,
        cancel_s,
    )


async def run_echo(url: str, mode: Mode, users: list[Samples], *, api_key: str | None) -> list[EchoTrial]:
    """One trial without and one with the user for each interruption in ``users``."""
    trials: list[EchoTrial] = []
    async with ProbeSession.open(url, mode, api_key=api_key) as session:
        plan: list[Samples | None] = [u for user in users for u in (None, user)]
        for index, user in enumerate(plan, 1):
            trial = await run_echo_trial(session, user)
            trials.append(trial)
            what = "with the user" if trial.user else "echo only"
            progress(
                f"{mode.name} {what}",
                index,
                len(plan),
                f"{trial.played_s:.1f} s played, {trial.self_interruptions} self-interruptions, "
                f"cancelled={trial.cancelled}",
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
        alone = [t for t in mine if not t.user]
        spoken = [t for t in mine if t.user]
        minutes = sum(t.played_s for t in alone) / 60
        judged = [t for t in spoken if not t.self_interruptions]  # the echo had not stopped it first
        missed = [t for t in judged if not (t.onset_to_cancel_s is not None or t.answered_after_onset)]
        modes[name] = {
            "self_interruptions_per_minute": sum(t.self_interruptions for t in alone) / minutes if minutes else None,
            "minutes_played_echo_only": minutes,
            "missed_interruption_rate": len(missed) / len(judged) if judged else None,
            "stopped_by_echo_before_the_user": len(spoken) - len(judged),
            "onset_to_cancel_s": distribution([t.onset_to_cancel_s for t in spoken if t.onset_to_cancel_s]),
            "trials": len(mine),
        }
    return modes


def table(modes: dict[str, Any]) -> str:
    lines = [
        f"Echo at -6 dB, {ROOM_DELAY_MS} ms room delay:",
        "",
        "| barge-in | self-interruptions / min (echo only) | missed real interruptions "
        "| onset → cancel p50 / p95 (s) |",
        "|---|---|---|---|",
    ]
    for name, m in modes.items():
        rate = m["self_interruptions_per_minute"]
        missed = m["missed_interruption_rate"]
        dist = m["onset_to_cancel_s"]
        rate_text = f"{rate:.1f}" if rate is not None else "-"
        missed_text = f"{missed:.0%}" if missed is not None else "-"
        cancel_text = f"{dist['p50']:.2f} / {dist['p95']:.2f}" if dist else "-"
        lines.append(f"| {name} | {rate_text} | {missed_text} | {cancel_text} |")
    return "\n".join(lines)


__all__ = ["MODES", "EchoTrial", "Speakerphone", "run_echo", "summarize", "table"]
