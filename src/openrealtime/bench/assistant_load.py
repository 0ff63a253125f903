"""``openrealtime bench load --session-kind assistant``: how many voice-assistant sessions one machine sustains.

For N = 1, 2, 3, 4 concurrent realtime sessions, each asks spoken questions at real-time pace
(staggered starts) and waits for each spoken answer; it reports the latency from
``input_audio_buffer.speech_stopped`` to the first answer audio, p50 and p90 per N, and the largest
N within the targets of issue 5 (p50 under 0.5 s, p90 under 0.8 s).

With ``--turn-modes semantic_vad:medium`` the sessions end their turns with the end-of-turn model,
and each level also reports what the model cost (issue 13): its decisions, their CPU time each, and
the share of the machine's cores they took, read from the server's ``/metrics`` before and after
the level (``openrealtime_end_of_turn_cpu_seconds``), so it works against ``--url`` as well; and the
same for its text signal, the LLM's questions about the pause's words
(``openrealtime_end_of_turn_text_cpu_seconds``, session/eou_text.py).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from openrealtime.bench.assistant import QUESTIONS, REALTIME_PATH, measure_turns
from openrealtime.bench.load import memory_per_extra_session, rss_mb
from openrealtime.bench.report import percentile, progress, write_results
from openrealtime.bench.speech import speak
from openrealtime.bench.target import server_target

P50_TARGET_S = 0.5
P90_TARGET_S = 0.8
STAGGER_S = 1.3
DEFAULT_TURNS_PER_SESSION = 10  # a level's p50 and p90 need a few dozen answers to be stable
SESSION_COUNTS = (1, 2, 3, 4)


METRIC = "openrealtime_end_of_turn_cpu_seconds"
TEXT_METRIC = "openrealtime_end_of_turn_text_cpu_seconds"


async def end_of_turn_cost(url: str, api_key: str | None, metric: str = METRIC) -> tuple[float, float] | None:
    """The server's end-of-turn decisions (or, with ``TEXT_METRIC``, its text signal's questions) so far
    and their CPU seconds, from its ``/metrics``; ``None`` when it cannot be read or has no such lines."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme in ("wss", "https") else "http"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(urlunsplit((scheme, parts.netloc, "/metrics", "", "")), headers=headers)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    if f"# TYPE {metric} " not in response.text:
        return None  # not a server that reports it
    values = {f"{metric}_count": 0.0, f"{metric}_sum": 0.0}  # no decision yet: no sample lines
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values[f"{metric}_count"], values[f"{metric}_sum"]


def _cost(
    before: tuple[float, float] | None, after: tuple[float, float] | None, wall_s: float, names: tuple[str, str, str]
) -> dict[str, Any]:
    """What one metric's calls cost over a level, under ``names``: how many, CPU each (ms), and the
    share of all the machine's cores (the server's own cores when it runs elsewhere)."""
    calls = cpu_s = None
    if before is not None and after is not None:
        calls, cpu_s = after[0] - before[0], after[1] - before[1]
    count, each, share = names
    return {
        count: calls,
        each: cpu_s * 1000 / calls if calls and cpu_s is not None else None,
        share: cpu_s / (wall_s * (os.cpu_count() or 1)) if cpu_s is not None else None,
    }


async def _level(
    url: str, sessions: int, turns: int, api_key: str | None, turn_detection: dict[str, Any] | None
) -> dict[str, Any]:
    async def session(index: int) -> list[float]:
        await asyncio.sleep(index * STAGGER_S)  # staggering the starts (pacing, not ordering)
        questions = [QUESTIONS[(index * turns + k) % len(QUESTIONS)] for k in range(turns)]
        timings, _ = await measure_turns(url, questions, api_key=api_key, turn_detection=turn_detection)
        return [t.stopped_to_first_audio_s for t in timings if t.stopped_to_first_audio_s is not None]

    cost0 = await end_of_turn_cost(url, api_key)
    text0 = await end_of_turn_cost(url, api_key, TEXT_METRIC)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(session(i)) for i in range(sessions)]
    latencies = [v for task in tasks for v in task.result()]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    cost1 = await end_of_turn_cost(url, api_key)
    text1 = await end_of_turn_cost(url, api_key, TEXT_METRIC)
    p50 = statistics.median(latencies) if latencies else float("inf")
    p90 = percentile(latencies, 90) if latencies else float("inf")
    return {
        "sessions": sessions,
        "turns_answered": len(latencies),
        "turns_asked": sessions * turns,
        "first_audio_p50_s": p50,
        "first_audio_p90_s": p90,
        "cpu_cores_busy": cpu / wall,
        "rss_mb": rss_mb(),
        "within_targets": p50 <= P50_TARGET_S and p90 <= P90_TARGET_S and len(latencies) == sessions * turns,
        "first_audio_s": latencies,
        **_cost(cost0, cost1, wall, ("end_of_turn_decisions", "end_of_turn_cpu_ms_each", "end_of_turn_cpu_share")),
        **_cost(text0, text1, wall, ("text_signal_questions", "text_signal_cpu_ms_each", "text_signal_cpu_share")),
    }


async def run_assistant_load_bench(
    *,
    url: str | None,
    out_dir: Path | None,
    max_sessions: int,
    turns: int = DEFAULT_TURNS_PER_SESSION,
    api_key: str | None = None,
    turn_detection: dict[str, Any] | None = None,
) -> int:
    """The ``bench load --session-kind assistant`` command: ``turns`` questions per session, under
    ``turn_detection`` (the client's default, ``server_vad``, for ``None``)."""
    for question in QUESTIONS:  # synthesize before any timing
        speak(question)
    counts = [n for n in SESSION_COUNTS if n <= max_sessions]
    levels: list[dict[str, Any]] = []
    async with server_target(url, REALTIME_PATH, api_key=api_key) as target:
        info = target.machine()
        for index, n in enumerate(counts, 1):
            level = await _level(target.url, n, turns, target.api_key, turn_detection)
            if not target.in_process:
                level.update(cpu_cores_busy=None, rss_mb=None)
            levels.append(level)
            progress(
                "level",
                index,
                len(counts),
                f"{n} assistant session(s): speech_stopped → first audio p50 "
                f"{level['first_audio_p50_s']:.2f} s, p90 {level['first_audio_p90_s']:.2f} s",
            )
            if not level["within_targets"] and n > 1:
                break
    passing = [lv["sessions"] for lv in levels if lv["within_targets"]]
    lines = [
        "| sessions | answered | first audio p50 | first audio p90 | CPU cores busy | RSS | within targets |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        cpu = "-" if lv["cpu_cores_busy"] is None else f"{lv['cpu_cores_busy']:.2f}"
        rss = "-" if lv["rss_mb"] is None else f"{lv['rss_mb']:.0f} MB"
        lines.append(
            f"| {lv['sessions']} | {lv['turns_answered']}/{lv['turns_asked']} | {lv['first_audio_p50_s']:.3f} s "
            f"| {lv['first_audio_p90_s']:.3f} s | {cpu} | {rss} | {'yes' if lv['within_targets'] else 'no'} |"
        )
    best = max(passing) if passing else 0
    per_session_mb = memory_per_extra_session(levels) if target.in_process else None
    lines.append(
        f"\nlargest N within targets (p50 < {P50_TARGET_S} s, p90 < {P90_TARGET_S} s): **{best}**"
        + (
            f"; memory per extra session ≈ {per_session_mb:.1f} MB (server and bench clients in one process)"
            if per_session_mb is not None
            else ""
        )
    )
    lines += _model_cost_lines(levels)
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        summary = {
            "machine": info,
            "levels": levels,
            "max_sessions_within_targets": best,
            "memory_per_extra_session_mb": per_session_mb,
        }
        write_results(out_dir, "load-assistant", summary, table)
    return 0


def _model_cost_lines(levels: list[dict[str, Any]]) -> list[str]:
    """What the end-of-turn model cost at each level, when it ran."""
    ran = [lv for lv in levels if lv["end_of_turn_decisions"]]
    if not ran:
        return []
    lines = [
        "\n| sessions | end-of-turn decisions | CPU per decision | share of the cores "
        "| text signal's questions | CPU per question | share of the cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for lv in ran:
        questions = lv["text_signal_questions"]
        text = (
            f"{questions:.0f} | {lv['text_signal_cpu_ms_each']:.1f} ms | {lv['text_signal_cpu_share'] * 100:.2f} %"
            if questions
            else "0 | - | -"
        )
        lines.append(
            f"| {lv['sessions']} | {lv['end_of_turn_decisions']:.0f} | {lv['end_of_turn_cpu_ms_each']:.1f} ms "
            f"| {lv['end_of_turn_cpu_share'] * 100:.2f} % of {os.cpu_count()} | {text} |"
        )
    return lines
