"""``openrealtime bench turns``: end of turn, measured as eot-bench does, over the public protocol.

**The pause set.** Sentences with realistic mid-sentence pauses ("I'd like to book a table for …
two people, at … seven") and sentences spoken in one go, each in the installed voices (piper
``en_US-joe-medium``; espeak-ng for variety) at several speeds. A pause is made where a speaker would
make it: the *whole* sentence is synthesized, so the words before a pause keep the prosody of a
sentence that goes on (synthesizing the fragment alone would end it with a final fall, which no
hesitating speaker does). Each ``|`` is spoken as a comma, which makes the voice leave a short gap
with the level or rising pitch of a phrase that continues; the gaps are found in the audio (the
longest quiet runs, one per comma, in order), the gap of each ``|`` is stretched to 400-900 ms, and
Whisper checks that the words before it end with the word before the ``|`` (clips where it does not
are left out: Whisper's own word timestamps were too loose to cut at, often a word late). Clips are
cached on disk.

**A trial.** One fresh realtime session per clip and mode, the clip streamed at real time in 20 ms
chunks (lead silence, the clip, then silence until the answer's first audio). Reported per mode:

* **false cut-off rate**: the share of clips with pauses in which the server ended a turn inside a
  pause (an ``input_audio_buffer.speech_stopped`` whose ``audio_end_ms`` lies before the end of the
  clip's last word: positions in the audio, not times, so load cannot blur them);
* **end of speech → first answer audio**, p50 / p90: from the moment the chunk holding the clip's last
  speech sample was sent to the first ``response.output_audio.delta`` of a response created after the
  clip's last turn was committed.

Modes: ``server_vad`` with 200 and 500 ms of silence, ``semantic_vad`` at each eagerness (``auto``
is ``medium``, so it is not run twice). Several sessions run at once (``--sessions``) to save time;
on two cores that raises latency, so a published run uses the default of 2.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.bench.configured import Items, configured_session, wait_until
from openrealtime.bench.report import Plots, Series, distribution, progress, write_results
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.bench.target import server_target
from openrealtime.bench.turn_clips import Clip, pause_set
from openrealtime.bench.turn_verdicts import decision_cost, verdict_rates, verdict_table, verdicts
from openrealtime.client.connection import RealtimeConnection

REALTIME_PATH = "/v1/realtime?model=gpt-realtime"
MS_PER_S = 1000
MIC_CHUNK_MS = 20
LEAD_MS = 400  # silence before the clip
CUT_OFF_SLACK_MS = 20  # a speech_stopped this close to the last word's end is the real end (Silero's offset)
ANSWER_WAIT_S = 10.0  # after the end of speech: a mode that has not answered by then has failed the clip
INSTRUCTIONS = "Answer in one short sentence."
# One user's turns at a time: the target is one speaker's wait. Two at a time (the default until session
# 23) put both clips' pauses in the same second when the clips are alike, so two answers' decode, LLM
# and voice shared the two cores at once: first audio p50 0.82 s, against 0.52 s one at a time (the
# same code, semantic_vad medium). Concurrency is ``bench load``'s (issue 5's targets, four sessions).
DEFAULT_SESSIONS = 1
SETTLE_WAIT_S = 60.0  # the warm-up's answer, a cancel or a delete taking longer than this is a failure
TARGET_P50_S = 0.35
TARGET_CUT_OFF_RATE = 0.05


@dataclass(frozen=True)
class Mode:
    """A turn-detection setting under test."""

    name: str
    turn_detection: dict[str, Any]

    @property
    def key(self) -> str:
        """How ``--turn-modes`` names it: ``server_vad:500``, ``semantic_vad:medium``."""
        td = self.turn_detection
        setting = td.get("silence_duration_ms", td.get("eagerness"))
        return f"{td['type']}:{setting}"


MODES = (
    Mode("server_vad 200 ms", {"type": "server_vad", "silence_duration_ms": 200}),
    Mode("server_vad 500 ms", {"type": "server_vad", "silence_duration_ms": 500}),
    Mode("semantic_vad high", {"type": "semantic_vad", "eagerness": "high"}),
    Mode("semantic_vad medium (= auto)", {"type": "semantic_vad", "eagerness": "medium"}),
    Mode("semantic_vad low", {"type": "semantic_vad", "eagerness": "low"}),
)


def select_modes(spec: str | None) -> tuple[Mode, ...]:
    """The modes ``--turn-modes`` names (comma-separated keys, ``semantic_vad:auto`` is medium), in
    the bench's order; all of them for ``None``."""
    if not spec:
        return MODES
    wanted = {name.strip().replace("semantic_vad:auto", "semantic_vad:medium") for name in spec.split(",")}
    unknown = wanted - {mode.key for mode in MODES}
    if unknown:
        known = ", ".join(mode.key for mode in MODES)
        raise ValueError(f"unknown turn mode(s) {', '.join(sorted(unknown))}; the modes are {known}")
    return tuple(mode for mode in MODES if mode.key in wanted)


# --- a trial ----------------------------------------------------------------------------------------


@dataclass
class Trial:
    """One clip under one mode: whether a pause was cut off, and how soon the answer came."""

    mode: str
    text: str
    voice: str
    paused: bool
    cut_off: bool
    cut_at_ms: list[int]
    speech_end_to_first_audio_s: float | None
    speech_end_to_turn_end_s: float | None = None  # to the final turn's speech_stopped (turn detection alone)


def cut_offs(stopped_ms: list[int], clip: Clip) -> list[int]:
    """The ``speech_stopped`` positions (ms from the clip's start) that fell before its last word ended."""
    return [at for at in stopped_ms if at < clip.speech_end_ms - CUT_OFF_SLACK_MS]


class TrialSession:
    """One realtime session that runs clips one after another, as a user would speak turns.

    A session is reused so that the LLM's prompt cache is warm, as in a conversation (a fresh session
    per clip measured the prompt's first processing, not the turn): before the first clip it answers a
    warm-up text turn, and after each clip the answer is cancelled and every item of the clip is
    deleted, so each clip is answered from the same short prompt. Audio positions are absolute in a
    session, so each clip's are taken from where it started.
    """

    def __init__(self, conn: RealtimeConnection, mode: Mode) -> None:
        self._conn = conn
        self._mode = mode
        self.sent_ms = 0
        self._items = Items()
        self._done: set[str] = set()
        self._created: list[str] = []
        self._speaking: set[str] = set()
        self._changed = asyncio.Event()
        self._on_event: Any = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, mode: Mode, *, api_key: str | None = None) -> AsyncIterator[TrialSession]:
        opened = configured_session(
            url,
            lambda conn: cls(conn, mode),
            instructions=INSTRUCTIONS,
            turn_detection=mode.turn_detection,
            api_key=api_key,
        )
        async with opened as session:
            await session._warm_up()
            yield session

    async def read_events(self) -> None:
        async for event in self._conn:
            kind = event.get("type")
            self._items.heard(event)
            if kind == "response.done":
                self._done.add(event["response"]["id"])
            elif kind == "response.created":
                self._created.append(event["response"]["id"])
            elif kind == "response.output_audio.delta":
                self._speaking.add(event["response_id"])
            if self._on_event is not None:
                self._on_event(event)
            self._changed.set()

    async def _until(self, condition: Any, timeout_s: float = SETTLE_WAIT_S) -> None:
        await wait_until(self._changed, condition, timeout_s)

    async def _warm_up(self) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello."}]}
        await self._conn.send({"type": "conversation.item.create", "item": item})
        created = len(self._created)
        await self._conn.send({"type": "response.create"})
        await self._until(lambda: len(self._created) > created)
        response_id = self._created[created]
        # Its first audio means the prompt was read (and cached): the rest need not be spoken.
        await self._until(lambda: response_id in self._speaking or response_id in self._done)
        if response_id not in self._done:
            await self._conn.send({"type": "response.cancel", "response_id": response_id})
        await self._until(lambda: response_id in self._done)
        await self._forget()

    async def _forget(self) -> None:
        """Delete every item so far, and clear the input buffer: the next clip starts afresh."""
        await self._items.forget(self._conn, self._until)

    async def run(self, clip: Clip, *, answer_wait_s: float = ANSWER_WAIT_S) -> Trial:
        """Stream ``clip`` at real time; watch for cut-offs and the answer to its last turn."""
        loop = asyncio.get_running_loop()
        chunk = WIRE_RATE_HZ * MIC_CHUNK_MS // MS_PER_S
        lead = np.zeros(WIRE_RATE_HZ * LEAD_MS // MS_PER_S, np.float32)
        audio = np.concatenate([lead, clip.audio])
        end_sample = (LEAD_MS + clip.speech_end_ms) * WIRE_RATE_HZ // MS_PER_S
        origin_ms = self.sent_ms + LEAD_MS  # where the clip starts in the session's audio
        stopped_ms: list[int] = []
        committed: list[str] = []
        answer_of: dict[str, str | None] = {}
        answers: list[str] = []
        speech_end_at: float | None = None
        first_audio_at: float | None = None
        turn_end_at: float | None = None

        def on_event(event: dict[str, Any]) -> None:
            nonlocal first_audio_at, turn_end_at
            kind = event.get("type")
            if kind == "input_audio_buffer.speech_stopped":
                stopped_ms.append(int(event["audio_end_ms"]) - origin_ms)
                if turn_end_at is None and not cut_offs(stopped_ms[-1:], clip):
                    turn_end_at = loop.time()
            elif kind == "input_audio_buffer.committed":
                committed.append(event["item_id"])
            elif kind == "response.created":
                answer_of[event["response"]["id"]] = committed[-1] if committed else None
            elif kind == "response.output_audio.delta" and speech_end_at is not None and first_audio_at is None:
                # The answer to the last turn: created after the turn that holds the last word.
                item = answer_of.get(event["response_id"])
                final_turn = bool(stopped_ms) and not cut_offs(stopped_ms[-1:], clip)
                if item is not None and item == committed[-1] and final_turn:
                    first_audio_at = loop.time()
                    answers.append(event["response_id"])

        self._on_event = on_event
        try:
            started = loop.time()
            position, index = 0, 0
            deadline: float | None = None
            while first_audio_at is None:
                index += 1
                await asyncio.sleep(max(0.0, started + index * MIC_CHUNK_MS / MS_PER_S - loop.time()))
                part = audio[position : position + chunk]
                if part.size < chunk:
                    part = np.concatenate([part, np.zeros(chunk - part.size, np.float32)])
                await self._conn.append_audio(float_to_pcm16(part))
                self.sent_ms += MIC_CHUNK_MS
                if position <= end_sample < position + chunk:
                    speech_end_at = loop.time()
                    deadline = speech_end_at + answer_wait_s
                position += chunk
                if deadline is not None and loop.time() > deadline:
                    break
            # Stop the answers (each cancel of a finished one is a harmless error event), then forget.
            for response_id in answer_of:
                if response_id not in self._done:
                    await self._conn.send({"type": "response.cancel", "response_id": response_id})
            await self._until(lambda: all(r in self._done for r in answer_of))
            await self._forget()
        finally:
            self._on_event = None
        cuts = cut_offs(stopped_ms, clip)
        latency = first_audio_at - speech_end_at if first_audio_at is not None and speech_end_at is not None else None
        turn_end = turn_end_at - speech_end_at if turn_end_at is not None and speech_end_at is not None else None
        return Trial(self._mode.name, clip.text, clip.voice, clip.paused, bool(cuts), cuts, latency, turn_end)


async def run_trial(
    url: str, mode: Mode, clip: Clip, *, api_key: str | None = None, answer_wait_s: float = ANSWER_WAIT_S
) -> Trial:
    """``clip`` on a session of its own (warmed up first)."""
    async with TrialSession.open(url, mode, api_key=api_key) as session:
        return await session.run(clip, answer_wait_s=answer_wait_s)


async def run_mode(url: str, mode: Mode, clips: list[Clip], sessions: int, *, api_key: str | None) -> list[Trial]:
    """Every clip under ``mode``: ``sessions`` sessions at once, each speaking its share in turn."""
    done = 0
    trials: list[Trial | None] = [None] * len(clips)

    async def worker(first: int) -> None:
        nonlocal done
        async with TrialSession.open(url, mode, api_key=api_key) as session:
            for index in range(first, len(clips), sessions):
                clip = clips[index]
                trial = trials[index] = await session.run(clip)
                done += 1
                latency = trial.speech_end_to_first_audio_s
                shown = f"{latency:.3f} s" if latency is not None else "no answer"
                flag = "  CUT OFF" if trial.cut_off else ""
                progress(mode.name, done, len(clips), f"{shown:>9}{flag}  [{clip.voice}] {clip.text!r}")

    async with asyncio.TaskGroup() as tg:
        for first in range(min(sessions, len(clips))):
            tg.create_task(worker(first))
    return [t for t in trials if t is not None]


# --- the report -------------------------------------------------------------------------------------


def summarize(trials: list[Trial]) -> dict[str, Any]:
    """Per mode: clips, cut-off rate over the clips with pauses, latency p50/p90 over those answered."""
    modes: dict[str, Any] = {}
    for name in dict.fromkeys(t.mode for t in trials):
        mine = [t for t in trials if t.mode == name]
        paused = [t for t in mine if t.paused]
        latencies = [t.speech_end_to_first_audio_s for t in mine if t.speech_end_to_first_audio_s is not None]
        turn_ends = [t.speech_end_to_turn_end_s for t in mine if t.speech_end_to_turn_end_s is not None]
        modes[name] = {
            "clips": len(mine),
            "paused_clips": len(paused),
            "false_cut_offs": sum(t.cut_off for t in paused),
            "false_cut_off_rate": sum(t.cut_off for t in paused) / len(paused) if paused else None,
            "answered": len(latencies),
            "speech_end_to_first_audio_s": distribution(latencies, (50, 90)),
            "speech_end_to_turn_end_s": distribution(turn_ends, (50, 90)),
        }
    return modes


def table(modes: dict[str, Any]) -> str:
    lines = [
        "| mode | false cut-offs (pause set) | end of speech → first audio p50 / p90 "
        "| end of speech → speech_stopped p50 / p90 | answered |",
        "|---|---|---|---|---|",
    ]
    for name, m in modes.items():
        rate = m["false_cut_off_rate"]
        cut = f"{m['false_cut_offs']} / {m['paused_clips']} ({rate:.0%})" if rate is not None else "-"
        lat = m["speech_end_to_first_audio_s"]
        shown = f"{lat['p50']:.3f} / {lat['p90']:.3f} s" if lat else "-"
        end = m["speech_end_to_turn_end_s"]
        ended = f"{end['p50']:.3f} / {end['p90']:.3f} s" if end else "-"
        lines.append(f"| {name} | {cut} | {shown} | {ended} | {m['answered']} / {m['clips']} |")
    return "\n".join(lines)


def plots(trials: list[Trial], modes: dict[str, Any]) -> Plots:
    """One latency curve (empirical CDF) per mode in one panel, its cut-off rate in the legend."""
    series = []
    for name, m in modes.items():
        rate = m["false_cut_off_rate"]
        label = f"{name}: {rate:.0%} cut off" if rate is not None else name
        values = [t.speech_end_to_first_audio_s for t in trials if t.mode == name]
        series.append(Series(label, [v for v in values if v is not None], panel="end of speech → first answer audio"))
        ends = [t.speech_end_to_turn_end_s for t in trials if t.mode == name]
        series.append(Series(label, [v for v in ends if v is not None], panel="end of speech → speech_stopped"))
    return Plots(latencies=tuple(series))


async def run_turns_bench(
    *,
    url: str | None,
    out_dir: Path | None,
    sessions: int = DEFAULT_SESSIONS,
    limit: int | None = None,
    api_key: str | None = None,
    parts: tuple[int, ...] = (1, 2, 3),
    turn_modes: tuple[Mode, ...] = MODES,
    trace: bool = False,
    echo_room: str = "bench",
) -> int:
    """The ``bench turns`` command: part 1 (end of turn, under ``turn_modes``), 2 (interruptions),
    3 (echo), as asked. With ``trace``, part 1 is the trace of where the time goes
    (:mod:`~openrealtime.bench.turn_trace`: a server in this process only)."""
    if trace and url is not None:
        print("bench turns: --turn-trace watches the server from inside: it needs the server in-process (no --url)")
        return 2
    summary: dict[str, Any] = {"sessions_at_a_time": sessions, "parts": list(parts)}
    texts: list[str] = []
    trials: list[Trial] = []
    modes: dict[str, Any] = {}
    async with server_target(url, REALTIME_PATH, api_key=api_key) as target:
        summary["machine"] = target.machine()
        if 1 in parts and trace:
            from openrealtime.bench.turn_trace import run_trace

            clips = await asyncio.to_thread(pause_set, limit)
            text = await run_trace(target.url, turn_modes, clips)
            texts.append(text)
            summary["trace"] = text
        elif 1 in parts:
            text, part, trials, modes = await _end_of_turn(target.url, target.api_key, sessions, limit, turn_modes)
            texts.append(text)
            summary.update(part)
        if 2 in parts:
            text, part = await _interruptions(target.url, target.api_key, limit)
            texts.append(text)
            summary["interruptions"] = part
        if 3 in parts:
            text, part = await _echo(target.url, target.api_key, limit, echo_room)
            texts.append(text)
            summary["echo"] = part
    text = "\n\n".join(texts)
    print(text)
    if out_dir is not None:
        write_results(out_dir, "turns", summary, text, plots=plots(trials, modes) if trials else None)
    return 0


async def _end_of_turn(
    url: str, api_key: str | None, sessions: int, limit: int | None, turn_modes: tuple[Mode, ...] = MODES
) -> tuple[str, dict[str, Any], list[Trial], dict[str, Any]]:
    """Part 1: the pause set under every turn detection asked for."""
    cost = await asyncio.to_thread(decision_cost)
    print(
        f"bench turns: one end-of-turn decision costs {cost['wall_ms']['p50']:.1f} ms "
        f"(p50 wall; CPU {cost['cpu_ms']['p50']:.1f} ms, features {cost['features_wall_ms']['p50']:.1f} ms)",
        flush=True,
    )
    clips = await asyncio.to_thread(pause_set, limit)
    points = await asyncio.to_thread(verdicts, clips)
    rates = verdict_rates(points)
    offline = verdict_table(rates)
    print(offline, flush=True)
    paused = sum(c.paused for c in clips)
    print(
        f"bench turns: {len(clips)} clips ({paused} with pauses) x {len(turn_modes)} modes, "
        f"{sessions} sessions at a time, streamed at real time",
        flush=True,
    )
    trials: list[Trial] = []
    for mode in turn_modes:
        trials += await run_mode(url, mode, clips, sessions, api_key=api_key)
    modes = summarize(trials)
    text = (
        table(modes)
        + "\n\n"
        + offline
        + (
            f"\n\nEnd-of-turn decision (Smart Turn v3.2, one thread, in the bench's process): "
            f"{cost['wall_ms']['p50']:.1f} ms p50 wall, {cost['cpu_ms']['p50']:.1f} ms CPU"
        )
    )
    part = {
        "end_of_turn_decision": cost,
        "first_question_offline": rates,
        "pause_points": [asdict(v) for v in points],
        "targets": {"speech_end_to_first_audio_p50_s": TARGET_P50_S, "false_cut_off_rate": TARGET_CUT_OFF_RATE},
        "modes": modes,
        "clips": [
            {"text": c.text, "voice": c.voice, "pauses_ms": c.pauses_ms, "speech_end_ms": c.speech_end_ms}
            for c in clips
        ],
        "trials": [asdict(t) for t in trials],
    }
    return text, part, trials, modes


async def _interruptions(url: str, api_key: str | None, limit: int | None) -> tuple[str, dict[str, Any]]:
    """Part 2: backchannels, coughs and real interruptions over an answer (bench/interruptions.py)."""
    from openrealtime.bench import interruptions

    probes = await asyncio.to_thread(interruptions.probe_set, limit)
    print(f"bench turns: {len(probes)} probes over answers x {len(interruptions.MODES)} barge-in modes", flush=True)
    trials: list[interruptions.Trial] = []
    for mode in interruptions.MODES:
        trials += await interruptions.run_probes(url, mode, probes, api_key=api_key)
    modes = interruptions.summarize(trials)
    part = {
        "targets": {
            "backchannel_under_ms": interruptions.TARGET_BACKCHANNEL_MS,
            "onset_to_silence_s": interruptions.TARGET_SILENCE_S,
        },
        "modes": modes,
        "probes": [{"kind": p.kind, "text": p.text, "voice": p.voice, "voiced_ms": p.voiced_ms} for p in probes],
        "trials": [asdict(t) for t in trials],
    }
    return interruptions.table(modes), part


async def _echo(url: str, api_key: str | None, limit: int | None, room: str) -> tuple[str, dict[str, Any]]:
    """Part 3: the answer heard back through the microphone, with and without the user (bench/echo.py)."""
    from openrealtime.bench import echo

    users = await asyncio.to_thread(echo.interruption_voices, limit)
    print(f"bench turns: {2 * len(users)} answers into a speakerphone x {len(echo.MODES)} barge-in modes", flush=True)
    trials: list[echo.EchoTrial] = []
    for mode in echo.MODES:
        trials += await echo.run_echo(url, mode, users, api_key=api_key, room=room)
    modes = echo.summarize(trials)
    part = {
        "room": {
            "kind": room,
            "gain": echo.ECHO_GAIN,
            "delay_ms": echo.ROOM_DELAY_MS,
            "reflections": echo.REFLECTIONS,
            **({"rt60_ms": echo.REVERB_RT60_MS, "reverb_share": echo.REVERB_SHARE} if room != "bench" else {}),
        },
        "modes": modes,
        "trials": [asdict(t) for t in trials],
    }
    return echo.table(modes), part
