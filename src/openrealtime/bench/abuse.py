"""``openrealtime bench abuse``: floods against the real models, and what they cost everyone else.

The server (this package's, started here with the default models, or ``--url``) is flooded in turn
while a **victim** voice session asks spoken questions at real-time pace, exactly as in ``bench
assistant`` (:func:`~openrealtime.bench.assistant.measure_turns`, a fresh session per scenario):

* **idle**: nothing else runs; the victim's baseline;
* **flood A, responses**: one realtime session sends ``--responses`` out-of-band ``response.create``
  at once and another each time one is done (the server keeps at most 3 in progress per session and
  refuses the rest with ``too_many_active_responses``);
* **flood B, audio**: ``--flood-sessions`` transcription sessions append speech at 10x real time
  (their transcription backlog is bounded: ``transcription_backlog_full``);
* **flood C, items**: a client bursts ``--items`` ``conversation.item.create`` on a fresh session and
  reads as fast as it can (every item should be acknowledged, the session not closed), one burst after
  another.

Reported per scenario: the victim's ``speech_stopped`` -> first audio p50/p90 and its p50 against
idle (goal: within 2x); ``/healthz`` latency p99, polled every 100 ms for the whole scenario over a
fresh HTTP/1.1 connection each time, from a process of its own so that the flooding clients' work in
this one does not count (goal: under 50 ms); the growth of this process's resident memory
from before the flood to its peak during it, and per flooding session (with a server started here:
server, victim and flooding clients share this process, and its event loop); and the error codes the
flooders got.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.bench.assistant import QUESTIONS, REALTIME_PATH, TRANSCRIPTION_MODEL, measure_turns
from openrealtime.bench.healthz_probe import HEALTH_INTERVAL_S, HEALTH_TIMEOUT_S, NO_ANSWER
from openrealtime.bench.load import rss_mb
from openrealtime.bench.report import Plots, Series, distribution, progress, write_results
from openrealtime.bench.speech import SENTENCES, WIRE_RATE_HZ, conversation, speak
from openrealtime.bench.target import Target, server_target
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.transcribe import transcription_session_update
from openrealtime.exceptions import ConnectionClosedError

DEFAULT_TURNS = 3  # the victim's questions per scenario: about 2-3 minutes in all on 2 cores
DEFAULT_RESPONSES = 40  # flood A: out-of-band response.create sent at once (the 40)
DEFAULT_FLOOD_SESSIONS = 4  # flood B: sessions appending audio at 10x real time
DEFAULT_ITEMS = 2_000  # flood C: conversation.item.create per burst (the 2,000)
SPEEDUP = 10  # flood B: audio seconds sent per second
FLOOD_CHUNK_MS = 100  # flood B: audio per append
FLOOD_SENTENCES = 6  # flood B: the sentences of its looped conversation
FLOOD_LEAD_S = 2.0  # a flood runs this long before the victim's first question
BURST_PAUSE_S = 1.0  # flood C: between one burst's last acknowledgement and the next burst
BURST_TIMEOUT_S = 60.0  # flood C: a burst whose items are not all acknowledged by then is reported short
HTTP_OK = 200
VICTIM_RATIO_GOAL = 2.0
HEALTH_P99_GOAL_S = 0.05
HEALTH_QUANTILE = 99
MS_PER_S = 1000
OUT_OF_BAND_PROMPT = "Tell me a long story about a lighthouse keeper and his cat."
IDLE = "idle"


@dataclass
class Probes:
    """``/healthz`` as a prober saw it during one scenario, and this process's peak memory then."""

    latencies_s: list[float] = field(default_factory=list)
    failed: int = 0  # no HTTP answer within HEALTH_TIMEOUT_S, or the connection failed
    not_ok: int = 0  # answered, but not 200
    peak_rss_mb: float = 0.0


@dataclass
class Flood:
    """What the flooding clients did and got back."""

    sessions: int = 0
    sent: int = 0  # response.create (A), appends (B), items (C)
    errors: Counter[str] = field(default_factory=Counter)  # error codes, failed transcriptions included
    closes: list[int | None] = field(default_factory=list)  # connections the server closed, by code
    done: int = 0  # responses done (A), final transcripts (B), items acknowledged (C)
    bursts: list[dict[str, Any]] = field(default_factory=list)  # C: one entry per burst


FloodRun = Callable[[Target, asyncio.Event, Flood], Coroutine[Any, Any, None]]


# --- probing ----------------------------------------------------------------------------------------


async def _probe(target: Target, stop: asyncio.Event, probes: Probes) -> None:
    """Poll ``/healthz`` from a process of its own (:mod:`~openrealtime.bench.healthz_probe`) until
    ``stop``; sample this process's memory as it goes."""
    args = [sys.executable, "-m", "openrealtime.bench.healthz_probe", target.url]
    if target.api_key:
        args.append(target.api_key)
    prober = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert prober.stdin is not None

    async def read() -> None:
        assert prober.stdout is not None
        async for line in prober.stdout:
            seconds, status = line.split()
            probes.latencies_s.append(float(seconds))
            probes.failed += int(status) == NO_ANSWER
            probes.not_ok += int(status) not in (NO_ANSWER, HTTP_OK)

    reader = asyncio.create_task(read())
    try:
        while not stop.is_set():
            if target.in_process:
                probes.peak_rss_mb = max(probes.peak_rss_mb, rss_mb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL_S)
    finally:
        prober.stdin.close()  # the prober's signal to stop
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HEALTH_TIMEOUT_S * 2):
                await reader
                await prober.wait()
        if prober.returncode is None:
            prober.kill()
            await prober.wait()


# --- the floods -------------------------------------------------------------------------------------


def _error_code(event: dict[str, Any]) -> str:
    return str((event.get("error") or {}).get("code") or (event.get("error") or {}).get("type") or "unknown")


async def _until_stopped(stop: asyncio.Event, reading: Awaitable[None]) -> None:
    """Run ``reading`` until it ends or ``stop`` is set, whichever is first."""
    reader = asyncio.ensure_future(reading)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, stopper):
            task.cancel()
        await asyncio.gather(reader, stopper, return_exceptions=True)
    if reader.done() and not reader.cancelled() and (exc := reader.exception()) is not None:
        raise exc


def _response_create() -> dict[str, Any]:
    content = [{"type": "input_text", "text": OUT_OF_BAND_PROMPT}]
    return {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "output_modalities": ["audio"],
            "input": [{"type": "message", "role": "user", "content": content}],
        },
    }


def flood_responses(count: int) -> FloodRun:
    """Flood A: ``count`` out-of-band ``response.create`` at once, then one more per response done."""

    async def run(target: Target, stop: asyncio.Event, flood: Flood) -> None:
        flood.sessions = 1
        try:
            async with await RealtimeConnection.connect(target.url, api_key=target.api_key) as conn:

                async def read() -> None:
                    async for event in conn:
                        kind = event.get("type")
                        if kind == "error":
                            flood.errors[_error_code(event)] += 1
                        elif kind == "response.done":
                            flood.done += 1
                            await conn.send(_response_create())  # keep the session at its bound
                            flood.sent += 1
                    flood.closes.append(conn.close_code)

                for _ in range(count):
                    await conn.send(_response_create())
                    flood.sent += 1
                await _until_stopped(stop, read())
        except ConnectionClosedError as exc:
            flood.closes.append(exc.code)

    return run


def _transcription_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/v1/realtime", "intent=transcription", ""))


def flood_audio(sessions: int) -> FloodRun:
    """Flood B: ``sessions`` transcription sessions appending looped speech at ``SPEEDUP`` x real time."""
    audio, _ = conversation(list(SENTENCES[:FLOOD_SENTENCES]))
    chunk = WIRE_RATE_HZ * FLOOD_CHUNK_MS // MS_PER_S
    chunks = [float_to_pcm16(audio[i : i + chunk]) for i in range(0, audio.size - chunk + 1, chunk)]
    interval_s = FLOOD_CHUNK_MS / MS_PER_S / SPEEDUP

    async def one(index: int, target: Target, stop: asyncio.Event, flood: Flood) -> None:
        url = _transcription_url(target.url)
        try:
            async with await RealtimeConnection.connect(url, api_key=target.api_key) as conn:
                await conn.send(transcription_session_update(model=TRANSCRIPTION_MODEL, language="en", vad=True))

                async def read() -> None:
                    async for event in conn:
                        kind = event.get("type")
                        if kind in ("error", "conversation.item.input_audio_transcription.failed"):
                            flood.errors[_error_code(event)] += 1
                        elif kind == "conversation.item.input_audio_transcription.completed":
                            flood.done += 1
                    flood.closes.append(conn.close_code)

                async def send() -> None:
                    loop = asyncio.get_running_loop()
                    started, k = loop.time(), index * len(chunks) // max(1, sessions)  # not all in step
                    for sent in itertools.count(1):
                        await conn.append_audio(chunks[k % len(chunks)])
                        flood.sent += 1
                        k += 1
                        await asyncio.sleep(max(0.0, started + sent * interval_s - loop.time()))

                async def both() -> None:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(read())
                        tg.create_task(send())

                await _until_stopped(stop, both())
        except* ConnectionClosedError as group:
            flood.closes += [exc.code for exc in group.exceptions if isinstance(exc, ConnectionClosedError)]

    async def run(target: Target, stop: asyncio.Event, flood: Flood) -> None:
        flood.sessions = sessions
        async with asyncio.TaskGroup() as tg:
            for index in range(sessions):
                tg.create_task(one(index, target, stop, flood))

    return run


def flood_items(items: int) -> FloodRun:
    """Flood C: bursts of ``items`` ``conversation.item.create``, each on a fresh session read as fast
    as the client can, until stopped; each burst reports how many were acknowledged."""

    async def burst(target: Target, number: int, flood: Flood) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        acknowledged, events, closed = 0, 0, None
        try:
            async with await RealtimeConnection.connect(target.url, api_key=target.api_key) as conn:
                flood.sessions += 1

                async def send() -> None:
                    for k in range(items):
                        text = f"Burst {number}, message {k}: remember this."
                        content = [{"type": "input_text", "text": text}]
                        await conn.send(
                            {
                                "type": "conversation.item.create",
                                "item": {"type": "message", "role": "user", "content": content},
                            }
                        )
                        flood.sent += 1

                async def read() -> None:
                    nonlocal acknowledged, events
                    async for event in conn:
                        events += 1
                        kind = event.get("type")
                        if kind == "conversation.item.added":
                            acknowledged += 1
                            flood.done += 1
                            if acknowledged == items:
                                return
                        elif kind == "error":
                            flood.errors[_error_code(event)] += 1
                    flood.closes.append(conn.close_code)

                async with asyncio.timeout(BURST_TIMEOUT_S), asyncio.TaskGroup() as tg:
                    tg.create_task(send())
                    tg.create_task(read())
                closed = conn.close_code
        except* ConnectionClosedError as group:
            codes = [exc.code for exc in group.exceptions if isinstance(exc, ConnectionClosedError)]
            flood.closes += codes
            closed = codes[0] if codes else None
        except* TimeoutError:
            pass
        flood.bursts.append(
            {
                "items": items,
                "acknowledged": acknowledged,
                "events": events,
                "seconds": loop.time() - started,
                "closed_by_server": closed,
            }
        )

    async def run(target: Target, stop: asyncio.Event, flood: Flood) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            await burst(target, number, flood)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BURST_PAUSE_S)

    return run


# --- a scenario -------------------------------------------------------------------------------------


async def _scenario(name: str, target: Target, questions: list[str], run: FloodRun | None) -> dict[str, Any]:
    """The victim's turns with ``run`` flooding the server (or nothing), ``/healthz`` polled throughout."""
    gc.collect()  # memory growth from this scenario, not garbage left by the last
    rss_before = rss_mb() if target.in_process else None
    stop, probes, flood = asyncio.Event(), Probes(), Flood()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(_probe(target, stop, probes))
        if run is not None:
            tg.create_task(run(target, stop, flood))
            await asyncio.sleep(FLOOD_LEAD_S)
        try:
            timings, victim_errors = await measure_turns(target.url, questions, api_key=target.api_key)
        finally:
            stop.set()
    latencies = [t.stopped_to_first_audio_s for t in timings if t.stopped_to_first_audio_s is not None]
    growth = probes.peak_rss_mb - rss_before if rss_before is not None else None
    return {
        "scenario": name,
        "victim_turns": len(timings),
        "victim_answered": len(latencies),
        "victim_errors": victim_errors,
        "victim_stopped_to_first_audio_s": distribution(latencies, (50, 90)),
        "victim_latencies_s": latencies,
        "victim_heard": [t.heard for t in timings],
        "victim_answers": [t.answer for t in timings],
        "healthz_s": distribution(probes.latencies_s, (50, HEALTH_QUANTILE)),
        "healthz_latencies_s": probes.latencies_s,
        "healthz_failed": probes.failed,
        "healthz_not_ok": probes.not_ok,
        "rss_before_mb": rss_before,
        "rss_peak_mb": probes.peak_rss_mb if rss_before is not None else None,
        "rss_growth_mb": growth,
        "flood_sessions": flood.sessions,
        "rss_growth_per_flood_session_mb": growth / flood.sessions if growth is not None and flood.sessions else None,
        "flood_sent": flood.sent,
        "flood_done": flood.done,
        "flood_errors": dict(flood.errors),
        "flood_closed_by_server": flood.closes,
        "flood_bursts": flood.bursts,
    }


def _row(result: dict[str, Any], idle_p50: float | None) -> str:
    victim = result["victim_stopped_to_first_audio_s"]
    answered = f"{result['victim_answered']}/{result['victim_turns']}"
    if victim is None:
        latency, ratio = "no answer", "-"
    else:
        latency = f"{victim['p50']:.3f} / {victim['p90']:.3f} s"
        ratio = f"{victim['p50'] / idle_p50:.2f}x" if idle_p50 else "-"
    health = result["healthz_s"]
    healthz = "-"
    if health is not None:
        notes = [f"n={health['n']}"]
        notes += [f"{result['healthz_failed']} unanswered"] if result["healthz_failed"] else []
        notes += [f"{result['healthz_not_ok']} not 200"] if result["healthz_not_ok"] else []
        healthz = f"{health[f'p{HEALTH_QUANTILE}'] * MS_PER_S:.1f} ms ({', '.join(notes)})"
    growth, per = result["rss_growth_mb"], result["rss_growth_per_flood_session_mb"]
    memory = "-" if growth is None else f"{growth:+.0f} MB" + (f" ({per:+.1f} MB/session)" if per is not None else "")
    errors = ", ".join(f"{code} x{n}" for code, n in sorted(result["flood_errors"].items())) or "none"
    if result["flood_closed_by_server"]:
        errors += f"; closed {result['flood_closed_by_server']}"
    if result["flood_bursts"]:
        full = sum(b["acknowledged"] == b["items"] for b in result["flood_bursts"])
        errors += f"; bursts fully acknowledged {full}/{len(result['flood_bursts'])}"
    return f"| {result['scenario']} | {answered} | {latency} | {ratio} | {healthz} | {memory} | {errors} |"


async def run_abuse_bench(
    *,
    url: str | None,
    out_dir: Path | None,
    turns: int = DEFAULT_TURNS,
    responses: int = DEFAULT_RESPONSES,
    flood_sessions: int = DEFAULT_FLOOD_SESSIONS,
    items: int = DEFAULT_ITEMS,
    api_key: str | None = None,
) -> int:
    """The ``bench abuse`` command: idle, then floods A, B and C, ``turns`` victim questions each."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    for text in (*questions, *SENTENCES[:FLOOD_SENTENCES]):  # synthesize before any timing
        speak(text)
    scenarios: list[tuple[str, FloodRun | None]] = [
        (IDLE, None),
        (f"A: {responses} out-of-band responses", flood_responses(responses)),
        (f"B: {flood_sessions} sessions of audio at {SPEEDUP}x", flood_audio(flood_sessions)),
        (f"C: bursts of {items} items", flood_items(items)),
    ]
    print(f"bench abuse: {len(scenarios)} scenarios, the victim asks {turns} spoken question(s) in each", flush=True)
    results: list[dict[str, Any]] = []
    async with server_target(url, REALTIME_PATH, api_key=api_key) as target:
        info = target.machine()
        # One unmeasured question first: the idle baseline should not pay for the models' first calls.
        await measure_turns(target.url, questions[:1], api_key=target.api_key)
        for index, (name, run) in enumerate(scenarios, 1):
            result = await _scenario(name, target, questions, run)
            results.append(result)
            victim = result["victim_stopped_to_first_audio_s"]
            health = result["healthz_s"]
            progress(
                "scenario",
                index,
                len(scenarios),
                f"{name}: victim p50 {victim['p50']:.2f} s" if victim else f"{name}: victim not answered",
            )
            if health is not None:
                print(f"    /healthz p99 {health[f'p{HEALTH_QUANTILE}'] * MS_PER_S:.1f} ms", flush=True)
    idle = results[0]["victim_stopped_to_first_audio_s"]
    idle_p50 = idle["p50"] if idle else None
    for result in results:
        victim = result["victim_stopped_to_first_audio_s"]
        result["victim_p50_vs_idle"] = victim["p50"] / idle_p50 if victim and idle_p50 else None
    lines = [
        "| scenario | victim answered | victim speech_stopped → first audio p50 / p90 | p50 vs idle "
        f"(goal ≤ {VICTIM_RATIO_GOAL:.0f}x) | /healthz p{HEALTH_QUANTILE} "
        f"(goal < {HEALTH_P99_GOAL_S * MS_PER_S:.0f} ms) "
        "| RSS growth | flooders got |",
        "|---|---|---|---|---|---|---|",
        *(_row(result, idle_p50) for result in results),
    ]
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        summary = {
            "machine": info,
            "turns": turns,
            "goals": {"victim_p50_vs_idle": VICTIM_RATIO_GOAL, "healthz_p99_s": HEALTH_P99_GOAL_S},
            "scenarios": results,
        }
        write_results(out_dir, "abuse", summary, table, plots=abuse_plots(results))
    return 0


def abuse_plots(results: list[dict[str, Any]]) -> Plots:
    """The victim's latencies and ``/healthz``'s, one line per scenario in each panel."""
    victim = "victim: speech_stopped → first audio"
    health = "/healthz latency"
    return Plots(
        latencies=(
            *(Series(r["scenario"], r["victim_latencies_s"], panel=victim) for r in results),
            *(Series(r["scenario"], r["healthz_latencies_s"], panel=health) for r in results),
        )
    )
