"""``openrealtime bench calls``: concurrent WebRTC voice calls, and WebRTC against WebSocket.

Every talker is the assistant client (:class:`~openrealtime.client.assistant.Assistant`) with the
simulated microphone of ``bench assistant``: the bench's synthesized questions at real-time pace,
silence between them, each question asked once the answer has been heard. Over WebRTC
(``transport="webrtc"``, :mod:`~openrealtime.client.call`) the microphone goes out as 48 kHz Opus on
the call's track and the server plays the answer on its own; over WebSocket it goes as
``input_audio_buffer.append`` and the answer comes as deltas.

The latency is the same on both: **end of speech → first audio heard**, from the moment the
microphone chunk holding the question's last speech sample was handed to the client (as
``bench assistant``), to when the first answer sample louder than -60 dBFS is played at the client:
on a call, its place in the first audible decoded frame of the call's track, played as it arrives;
over a WebSocket, its place in the deltas as the client's real-time player plays them (a delta
plays when it arrives or when what was queued before it has played, so a voice's leading silence
counts on both). It includes the VAD's silence wait, the models, and on a call the Opus round trip,
the client's jitter buffer and the server's 20 ms frame clock.

Default mode, for N = 1, 2, 3, 4, 6, 8, ... concurrent calls (staggered starts; up to
``--max-sessions``): p50 and p90 of that latency and of speech_stopped → first audio heard (from the
server's event as it arrived: the figure the assistant targets are set on, without the VAD's wait),
the server's CPU per call, and the largest N within the assistant targets on the latter (p50 < 0.5 s,
p90 < 0.8 s, every question answered); then, to isolate what the
transport costs, N sessions of each transport held open with the microphone sending silence: the
server's cores per idle session over WebSocket and over WebRTC (the difference is Opus, SRTP and the
20 ms media clocks). ``--compare``: one WebSocket session and one call on the same server ask the
same questions, alternating (each question over both, the first transport swapped every question,
so a noisy moment hits both), side by side; with ``--browser`` also in the server's browser app in
headless Chromium (:mod:`~openrealtime.bench.browser`: a fresh page per question, after the other
two, timed in the page by a Web Audio analyser on the remote track).

The server's CPU is its own only when it runs in its own process: without ``--url`` the bench starts
``openrealtime serve`` as a child (:mod:`~openrealtime.bench.server_process`); with ``--url``, give
``--server-pid`` to measure it, else CPU is not reported.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import statistics
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openrealtime.audio.codec import pcm16_to_float
from openrealtime.bench.assistant import (
    GAP_MS,
    QUESTIONS,
    REALTIME_PATH,
    TRANSCRIPTION_MODEL,
    TURN_TIMEOUT_S,
    SimulatedMicrophone,
)
from openrealtime.bench.assistant_load import P50_TARGET_S, P90_TARGET_S, STAGGER_S
from openrealtime.bench.browser import ask_in_browser, check_browser
from openrealtime.bench.report import Plots, Series, percentile, progress, write_results
from openrealtime.bench.server_process import CpuMeter, spawned_server
from openrealtime.bench.speech import WIRE_RATE_HZ, silence, speak
from openrealtime.bench.target import Target, with_default_path
from openrealtime.client.assistant import Assistant, CallAudio
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.playback import ClockPlayer, Player

AUDIBLE = 1e-3  # -60 dBFS: a louder sample is heard (the track's idle frames are 0)
CALL_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16)
IDLE_SETTLE_S = 3.0  # after the idle sessions are open, before their CPU is measured
IDLE_S = 10.0
WARM_UP = "What is the capital of Spain?"  # asked before the timed questions (once per compared session), not timed
WEBSOCKET, WEBRTC, BROWSER = "websocket", "webrtc", "browser"
_LABELS = {WEBSOCKET: "websocket", WEBRTC: "webrtc (aiortc)", BROWSER: "webrtc (Chromium, browser app)"}


class Ear:
    """When audible answer audio reached the listener (loop clock, seconds), in order."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def hear(self, pcm16: bytes, starts_at_s: float | None = None) -> None:
        """Audio (PCM16, 24 kHz) that starts playing at ``starts_at_s`` (default: now); its first
        audible sample is heard that many samples later."""
        if not pcm16:
            return
        loud = np.flatnonzero(np.abs(pcm16_to_float(pcm16)) > AUDIBLE)
        if loud.size:
            start = asyncio.get_running_loop().time() if starts_at_s is None else starts_at_s
            bisect.insort(self.times, start + int(loud[0]) / WIRE_RATE_HZ)

    def first_after(self, at_s: float) -> float | None:
        index = bisect.bisect_left(self.times, at_s)
        return self.times[index] if index < len(self.times) else None


class _HeardPlayer(ClockPlayer):
    """A WebSocket session's player: a delta plays when it arrives, or when what is queued before it
    has played (a voice's leading silence included, as on a call's track)."""

    def __init__(self, ear: Ear, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.ear = ear
        self._now = clock

    def play(self, item_id: str, pcm16: bytes) -> None:
        ledger = self.ledger  # synced to now
        self.ear.hear(pcm16, self._now() + ledger.queued_samples / ledger.rate_hz)
        super().play(item_id, pcm16)


class _HeardCallAudio(CallAudio):
    """A call's track: every decoded frame plays as it arrives (after the client's jitter buffer),
    heard before the assistant's own gate (it plays only between ``output_audio_buffer.started`` and
    ``.stopped``)."""

    def __init__(self, player: Player, ear: Ear) -> None:
        super().__init__(player, keep=False)
        self.ear = ear

    def on_audio(self, pcm16: bytes) -> None:
        self.ear.hear(pcm16)
        super().on_audio(pcm16)


@dataclass
class Turn:
    """One question on one transport: what was heard and answered, and end of speech → first audio
    heard (seconds; ``None`` without an answer)."""

    transport: str
    question: str
    heard: str
    answer: str
    first_audio_s: float | None
    page_stopped_to_heard_s: float | None = None  # the browser app's own figure (browser turns only)
    # From the server's speech_stopped (as it arrived) to the first audio heard: the figure the
    # assistant targets are set on (``bench assistant``), without the VAD's silence wait.
    stopped_to_heard_s: float | None = None


@dataclass
class Talker:
    """An assistant session with its microphone streaming."""

    transport: str
    assistant: Assistant
    mic: SimulatedMicrophone
    ear: Ear
    stopped_at: list[float] = field(default_factory=list)  # each speech_stopped's arrival (loop clock)

    async def ask(self, question: str) -> Turn:
        assistant = self.assistant
        before, items_before = len(assistant.responses), {i.id for i in assistant.history.items()}
        spoken = await self.mic.say(speak(question))
        with contextlib.suppress(TimeoutError):  # reported as a turn without an answer
            await assistant.wait_until(
                lambda: len(assistant.responses) > before and assistant.idle(), timeout_s=TURN_TIMEOUT_S
            )
            await assistant.player.drained()
        await self.mic.say(silence(GAP_MS))
        new = [i for i in assistant.history.items() if i.id not in items_before]
        heard = " ".join(i.text for i in new if i.role == "user")
        answer = " ".join(i.text for i in new if i.role == "assistant")
        first = self.ear.first_after(spoken.speech_end_at_s) if len(assistant.responses) > before else None
        latency = first - spoken.speech_end_at_s if first is not None else None
        stops = [t for t in self.stopped_at if t >= spoken.speech_end_at_s and (first is None or t <= first)]
        stopped = first - stops[0] if first is not None and stops else None
        return Turn(self.transport, question, heard, answer, latency, stopped_to_heard_s=stopped)


@contextlib.asynccontextmanager
async def talker(url: str, transport: str, api_key: str | None) -> AsyncIterator[Talker]:
    """A session over ``transport`` (``websocket`` or ``webrtc``) at ``url``, its microphone on."""
    ear, mic = Ear(), SimulatedMicrophone()
    options = AssistantOptions(url=url, api_key=api_key, transcription_model=TRANSCRIPTION_MODEL, transport=transport)
    clock = asyncio.get_running_loop().time  # the microphone's clock
    player = _HeardPlayer(ear, clock) if transport == WEBSOCKET else ClockPlayer()
    stopped_at: list[float] = []

    def on_event(event: dict[str, Any], at_s: float) -> None:
        if event.get("type") == "input_audio_buffer.speech_stopped":
            stopped_at.append(at_s)

    assistant = Assistant(options, player=player, on_event=on_event)
    if transport == WEBRTC:
        assistant.call_audio = _HeardCallAudio(player, ear)
    async with assistant, asyncio.TaskGroup() as tg:
        tg.create_task(assistant.stream(mic.chunks()))
        try:
            yield Talker(transport, assistant, mic, ear, stopped_at)
        finally:
            mic.stop()


def _latencies(turns: list[Turn]) -> list[float]:
    return [t.first_audio_s for t in turns if t.first_audio_s is not None]


def _p(values: list[float], q: int) -> float:
    """The ``q``th percentile (the median for 50, as ``bench assistant``); infinite without values."""
    if not values:
        return float("inf")
    return statistics.median(values) if q == 50 else percentile(values, q)


async def _level(url: str, calls: int, turns: int, api_key: str | None, meter: CpuMeter | None) -> dict[str, Any]:
    async def call(index: int) -> tuple[list[Turn], int]:
        await asyncio.sleep(index * STAGGER_S)  # staggering the starts (pacing, not ordering)
        questions = [QUESTIONS[(index * turns + k) % len(QUESTIONS)] for k in range(turns)]
        async with talker(url, WEBRTC, api_key) as caller:
            asked = [await caller.ask(q) for q in questions]
            return asked, len(caller.assistant.errors)

    if meter is not None:
        meter.mark()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(call(i)) for i in range(calls)]
    cores = meter.cores() if meter is not None else None
    asked = [t for task in tasks for t in task.result()[0]]
    latencies = _latencies(asked)
    p50, p90 = _p(latencies, 50), _p(latencies, 90)
    stopped = [t.stopped_to_heard_s for t in asked if t.stopped_to_heard_s is not None]
    stopped_p50, stopped_p90 = _p(stopped, 50), _p(stopped, 90)
    return {
        "calls": calls,
        "turns_answered": len(latencies),
        "turns_asked": len(asked),
        "first_audio_p50_s": p50,
        "first_audio_p90_s": p90,
        "server_cores_busy": cores,
        "server_cores_per_call": cores / calls if cores is not None else None,
        "errors": sum(task.result()[1] for task in tasks),
        "stopped_to_heard_p50_s": stopped_p50,
        "stopped_to_heard_p90_s": stopped_p90,
        # The assistant targets are set from speech_stopped, so they are checked on that figure.
        "within_targets": stopped_p50 < P50_TARGET_S
        and stopped_p90 < P90_TARGET_S
        and len(stopped) == len(latencies) == len(asked),
        "first_audio_s": latencies,
        "turn_details": [asdict(t) for t in asked],
    }


async def _idle_cores(url: str, transport: str, sessions: int, api_key: str | None, meter: CpuMeter) -> float:
    """The server's cores per session while ``sessions`` sessions send silence and hear none."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(sessions):
            await stack.enter_async_context(talker(url, transport, api_key))
        await asyncio.sleep(IDLE_SETTLE_S)
        meter.mark()
        await asyncio.sleep(IDLE_S)
        return meter.cores() / sessions


@dataclass
class Run:
    """What one ``bench calls`` run measured."""

    levels: list[dict[str, Any]] = field(default_factory=list)
    idle: dict[str, float] = field(default_factory=dict)  # transport -> server cores per idle session
    idle_sessions: int = 0

    def best(self) -> int:
        return max((lv["calls"] for lv in self.levels if lv["within_targets"]), default=0)


async def measure_levels(url: str, max_calls: int, turns: int, api_key: str | None, meter: CpuMeter | None) -> Run:
    """Levels of concurrent calls up to ``max_calls`` (stopping after the first above the targets),
    then the idle cost of each transport at the largest level reached."""
    run = Run()
    async with talker(url, WEBRTC, api_key) as warm:  # the server's first answer is not timed
        await warm.ask(WARM_UP)
    counts = [n for n in CALL_COUNTS if n <= max_calls] or [max_calls]
    for index, calls in enumerate(counts, 1):
        level = await _level(url, calls, turns, api_key, meter)
        run.levels.append(level)
        cpu = level["server_cores_per_call"]
        shown = f", server {cpu:.3f} cores per call" if cpu is not None else ""
        progress(
            "level",
            index,
            len(counts),
            f"{calls} call(s): end of speech → first audio heard p50 {level['first_audio_p50_s']:.2f} s, "
            f"p90 {level['first_audio_p90_s']:.2f} s; speech_stopped → heard p50 "
            f"{level['stopped_to_heard_p50_s']:.2f} s, p90 {level['stopped_to_heard_p90_s']:.2f} s{shown}",
        )
        if not level["within_targets"] and calls > 1:
            break
    if meter is not None:
        run.idle_sessions = run.levels[-1]["calls"]
        for transport in (WEBSOCKET, WEBRTC):
            run.idle[transport] = await _idle_cores(url, transport, run.idle_sessions, api_key, meter)
            progress("idle", len(run.idle), 2, f"{transport}: {run.idle[transport]:.4f} server cores per session")
    return run


async def measure_compare(
    url: str, questions: list[str], api_key: str | None, *, browser: bool = False
) -> list[dict[str, Turn]]:
    """Each question over a WebSocket session and over a call on the same server, alternating which
    goes first, and with ``browser`` in the browser app too (last, a fresh page each question); the
    turns by transport, per question."""
    rounds: list[dict[str, Turn]] = []
    async with talker(url, WEBSOCKET, api_key) as ws, talker(url, WEBRTC, api_key) as rtc:
        for warm in (ws, rtc):
            await warm.ask(WARM_UP)
        if browser:
            await ask_in_browser(url, speak(WARM_UP))
        for index, question in enumerate(questions, 1):
            order = (ws, rtc) if index % 2 else (rtc, ws)
            turns = {t.transport: await t.ask(question) for t in order}
            if browser:
                page = await ask_in_browser(url, speak(question))
                turns[BROWSER] = Turn(
                    BROWSER, question, page.heard, page.answer, page.first_audio_s, page.page_stopped_to_heard_s
                )
            rounds.append({t: turns[t] for t in _transports(browser)})
            shown = " / ".join(_shown(turn) for turn in rounds[-1].values())
            progress("question", index, len(questions), shown)
    return rounds


def _transports(browser: bool) -> tuple[str, ...]:
    return (WEBSOCKET, WEBRTC, BROWSER) if browser else (WEBSOCKET, WEBRTC)


def _shown(turn: Turn) -> str:
    return f"{turn.transport} {turn.first_audio_s:.2f} s" if turn.first_audio_s is not None else f"{turn.transport} -"


def _s(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value == float("inf") else f"{value:.{digits}f}"


def levels_table(run: Run) -> str:
    lines = [
        "| calls | answered | end of speech → heard p50 | p90 | speech_stopped → heard p50 | p90 "
        "| server cores busy | server cores per call | within targets |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in run.levels:
        lines.append(
            f"| {lv['calls']} | {lv['turns_answered']}/{lv['turns_asked']} | {_s(lv['first_audio_p50_s'])} s "
            f"| {_s(lv['first_audio_p90_s'])} s | {_s(lv['stopped_to_heard_p50_s'])} s "
            f"| {_s(lv['stopped_to_heard_p90_s'])} s | {_s(lv['server_cores_busy'], 2)} "
            f"| {_s(lv['server_cores_per_call'])} | {'yes' if lv['within_targets'] else 'no'} |"
        )
    lines.append(
        f"\nlargest number of concurrent calls within the targets (speech_stopped → heard p50 < "
        f"{P50_TARGET_S} s, p90 < {P90_TARGET_S} s, all answered): **{run.best()}**"
    )
    if run.idle:
        ws, rtc = run.idle.get(WEBSOCKET, 0.0), run.idle.get(WEBRTC, 0.0)
        lines += [
            "",
            f"| {run.idle_sessions} idle sessions, {IDLE_S:g} s of silence | websocket | webrtc | webrtc's own |",
            "|---|---|---|---|",
            f"| server cores per session | {ws:.4f} | {rtc:.4f} | {rtc - ws:.4f} |",
        ]
    return "\n".join(lines)


def compare_table(rounds: list[dict[str, Turn]]) -> str:
    transports = list(rounds[0]) if rounds else [WEBSOCKET, WEBRTC]
    series = {t: _latencies([r[t] for r in rounds]) for t in transports}
    lines = [
        "| end of speech → first audio heard | " + " | ".join(_LABELS[t] for t in transports) + " |",
        "|---|" + "---|" * len(transports),
        "| answered | " + " | ".join(f"{len(series[t])}/{len(rounds)}" for t in transports) + " |",
        "| p50 | " + " | ".join(f"{_s(_p(series[t], 50))} s" for t in transports) + " |",
        "| p90 | " + " | ".join(f"{_s(_p(series[t], 90))} s" for t in transports) + " |",
    ]
    differences = []
    for t in transports:
        both = [
            first - ws
            for r in rounds
            if (first := r[t].first_audio_s) is not None and (ws := r[WEBSOCKET].first_audio_s) is not None
        ]
        differences.append(f"{statistics.median(both):+.3f} s" if both and t != WEBSOCKET else "")
    lines.append("| − websocket, median over the same questions | " + " | ".join(differences) + " |")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def _target(
    url: str | None, api_key: str | None, server_pid: int | None
) -> AsyncIterator[tuple[Target, CpuMeter | None]]:
    if url is not None:
        yield Target(with_default_path(url, REALTIME_PATH), api_key), CpuMeter(server_pid) if server_pid else None
        return
    from openrealtime.server.settings import Settings

    settings = Settings.load(max_realtime_sessions=0)  # the child's settings: the same variables
    async with spawned_server(["--max-realtime-sessions", "0"]) as server:
        print(f"bench calls: server started here (pid {server.pid}) at {server.base_url}", flush=True)
        yield Target(server.base_url + REALTIME_PATH, settings.api_key, settings), CpuMeter(server.pid)


async def run_calls_bench(
    *,
    url: str | None,
    out_dir: Path | None,
    max_calls: int,
    turns: int,
    compare: bool = False,
    browser: bool = False,
    api_key: str | None = None,
    server_pid: int | None = None,
) -> int:
    """The ``bench calls`` command: levels of concurrent calls (``turns`` questions each), or with
    ``compare`` the same ``turns`` questions over a WebSocket session and a call (and ``browser``:
    the browser app in Chromium)."""
    if browser:
        check_browser()  # before the server is started
    for question in (*QUESTIONS, WARM_UP):  # synthesize before any timing
        speak(question)
    mode = "compare" if compare else "levels"
    print(
        f"bench calls ({mode}): {turns} spoken questions "
        + (
            "over a WebSocket session and a WebRTC call, alternating"
            + (", then in the browser app in Chromium" if browser else "")
            if compare
            else f"per call, up to {max_calls} calls"
        ),
        flush=True,
    )
    async with _target(url, api_key, server_pid) as (target, meter):
        info = target.machine()
        if compare:
            questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
            rounds = await measure_compare(target.url, questions, target.api_key, browser=browser)
        else:
            run = await measure_levels(target.url, max_calls, turns, target.api_key, meter)
    if compare:
        table = compare_table(rounds)
        summary: dict[str, Any] = {
            "machine": info,
            "mode": mode,
            "turn_details": [asdict(t) for r in rounds for t in r.values()],
        }
        plots = Plots(
            latencies=tuple(
                Series(f"{_LABELS[name]}: end of speech → first audio heard", _latencies([r[name] for r in rounds]))
                for name in _transports(browser)
            )
        )
    else:
        table = levels_table(run)
        summary = {
            "machine": info,
            "mode": mode,
            "levels": run.levels,
            "max_calls_within_targets": run.best(),
            "idle_sessions": run.idle_sessions,
            "idle_server_cores_per_session": run.idle,
        }
        plots = None
    print(table)
    if out_dir is not None:
        write_results(out_dir, "calls" if not compare else "calls-compare", summary, table, plots=plots)
    return 0
