"""``openrealtime bench load``: how many real-time transcription sessions one machine sustains.

For N = 1, 2, 4, ... concurrent sessions, each streams real speech at real-time pace (staggered
starts, so turns do not all end at once); it reports first-delta and final-transcript p95 per N, the
word lag of the captions (p50, p95), the WER of the final transcripts of all sessions (which must not
depend on the load, issue 14), and the largest N within the targets (first delta p95 under 1.0 s,
final p95 under 0.3 s), with CPU and memory per session when the server runs in this process. It goes
on past a level that misses the targets, up to ``--max-sessions``, unless its first deltas take
``HOPELESS`` times their target.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from openrealtime.bench.report import LoadCurve, Plots, Series, percentile, progress, write_results
from openrealtime.bench.speech import SENTENCES, conversation, speak, word_error_rate
from openrealtime.bench.target import server_target
from openrealtime.bench.transcription import LANGUAGE, TRANSCRIPTION_PATH, measure
from openrealtime.bench.word_lag import SpokenWord, caption_words, engine, spoken_words, word_lags
from openrealtime.client.transcribe import TranscriptionResult
from openrealtime.server.settings import Settings

FIRST_DELTA_TARGET_S = 1.0
FINAL_TARGET_S = 0.3
STAGGER_S = 0.37
TURNS_PER_SESSION = 4
SESSION_COUNTS = (1, 2, 4, 6, 8, 10, 12, 16)
HOPELESS = 3.0  # a level whose first-delta p95 is this many times its target ends the run
KIB_PER_MIB = 1024
FIRST_DELTA = "first delta after speech onset"
FINAL = "final transcript after speech_stopped"


def memory_per_extra_session(levels: list[dict[str, Any]]) -> float | None:
    """RSS growth from the first level to the last, per session added (MiB); ``None`` with one level."""
    if len(levels) < 2:
        return None
    first, last = levels[0], levels[-1]
    return float((last["rss_mb"] - first["rss_mb"]) / max(1, last["sessions"] - first["sessions"]))


def rss_mb() -> float:
    """This process's resident memory (MiB); NaN where ``/proc`` cannot tell."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / KIB_PER_MIB
    except OSError:
        pass
    return float("nan")


def session_texts(index: int) -> tuple[str, ...]:
    """What session ``index`` of a level says."""
    return tuple(SENTENCES[(index * TURNS_PER_SESSION + k) % len(SENTENCES)] for k in range(TURNS_PER_SESSION))


async def _one_level(
    url: str, sessions: int, api_key: str | None, spoken: dict[tuple[str, ...], list[SpokenWord]]
) -> dict[str, Any]:
    """``sessions`` concurrent transcription sessions at ``url``; their p95s, word lags, WER, CPU and
    memory (``spoken``: each session's words with their times in its audio, for the word lag)."""
    heard: dict[int, list[str]] = {}
    lags: dict[int, list[float]] = {}

    async def session(index: int) -> list[Any]:
        await asyncio.sleep(index * STAGGER_S)  # staggering the starts (pacing, not ordering)
        texts = session_texts(index)
        runs: list[TranscriptionResult] = []
        timings, _, heard[index] = await measure(url, list(texts), api_key=api_key, runs=runs)
        lags[index] = word_lags(caption_words(runs[0].events), spoken[texts], runs[0].audio_started_at_s)
        return timings

    cpu0, wall0, rss0 = time.process_time(), time.perf_counter(), rss_mb()
    try:
        async with asyncio.TaskGroup() as tg:  # one failing session stops the level, not just itself
            tasks = [tg.create_task(session(i)) for i in range(sessions)]
    except ExceptionGroup as group:
        raise group.exceptions[0] from None  # the first failure as itself, as a single session reports it
    results = [task.result() for task in tasks]
    cpu, wall, rss = time.process_time() - cpu0, time.perf_counter() - wall0, rss_mb()
    firsts = [t.first_delta_after_onset_s for r in results for t in r if t.first_delta_after_onset_s is not None]
    finals = [t.final_after_stop_s for r in results for t in r if t.final_after_stop_s is not None]
    first_p95 = percentile(firsts, 95) if firsts else float("inf")
    final_p95 = percentile(finals, 95) if finals else float("inf")
    said = [" ".join(session_texts(i)) for i in range(sessions)]
    wer = word_error_rate(said, [" ".join(heard[i]) for i in range(sessions)])
    per_stream = [
        {"p50": statistics.median(lags[i]), "p95": percentile(lags[i], 95)} if lags[i] else None
        for i in range(sessions)
    ]
    all_lags = [lag for i in range(sessions) for lag in lags[i]]
    return {
        "wer": wer,
        "word_lag_p50_s": statistics.median(all_lags) if all_lags else float("nan"),
        "word_lag_p95_s": percentile(all_lags, 95) if all_lags else float("nan"),
        "word_lag_per_stream_s": per_stream,
        "sessions": sessions,
        "turns": sum(len(r) for r in results),
        "first_delta_p95_s": first_p95,
        "final_p95_s": final_p95,
        "cpu_cores_busy": cpu / wall,
        "rss_mb": rss,
        "rss_growth_mb": rss - rss0,
        "within_targets": first_p95 <= FIRST_DELTA_TARGET_S and final_p95 <= FINAL_TARGET_S,
        "first_delta_s": firsts,
        "final_s": finals,
    }


async def run_load_bench(
    *, url: str | None, out_dir: Path | None, max_sessions: int, api_key: str | None = None
) -> int:
    """The ``bench load`` command: more and more concurrent sessions until the targets are missed."""
    levels: list[dict[str, Any]] = []
    print("synthesizing the test speech …", flush=True)
    for text in SENTENCES:  # before any timing: piper in the event loop would stall every session
        speak(text)
    counts = [n for n in SESSION_COUNTS if n <= max_sessions]
    print("word times of the test speech, offline …", flush=True)
    transcriber = engine(Settings.load().asr_model)
    groups = {session_texts(i) for i in range(max(counts, default=0))}
    spoken = {texts: spoken_words(transcriber, conversation(list(texts))[0], LANGUAGE) for texts in groups}
    del transcriber
    print(f"bench load: up to {counts[-1] if counts else 0} concurrent transcription sessions", flush=True)
    async with server_target(url, TRANSCRIPTION_PATH, api_key=api_key) as target:
        info = target.machine()
        for index, n in enumerate(counts, 1):
            level = await _one_level(target.url, n, target.api_key, spoken)
            if not target.in_process:  # this process is only the client: its CPU and memory say nothing
                level.update(cpu_cores_busy=None, rss_mb=None, rss_growth_mb=None)
            levels.append(level)
            progress(
                "level",
                index,
                len(counts),
                f"{_sessions(n)}: first delta p95 {level['first_delta_p95_s']:.2f} s, final p95 "
                f"{level['final_p95_s']:.3f} s, word lag p50/p95 {level['word_lag_p50_s']:.2f}/"
                f"{level['word_lag_p95_s']:.2f} s, WER {level['wer'] * 100:.1f} %, "
                f"{_shown(level['cpu_cores_busy'], '.2f')} cores busy, RSS {_shown(level['rss_mb'], '.0f', ' MB')}",
            )
            if level["first_delta_p95_s"] > HOPELESS * FIRST_DELTA_TARGET_S and n > 1:
                break
    passing = [lv["sessions"] for lv in levels if lv["within_targets"]]
    best = max(passing) if passing else 0
    per_session_mb = memory_per_extra_session(levels) if target.in_process else None
    lines = [
        "| sessions | first delta p95 | final p95 | word lag p50 / p95 | WER | CPU cores busy | RSS | within targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        lines.append(
            f"| {lv['sessions']} | {lv['first_delta_p95_s']:.2f} s | {lv['final_p95_s']:.3f} s | "
            f"{lv['word_lag_p50_s']:.2f} / {lv['word_lag_p95_s']:.2f} s | {lv['wer'] * 100:.1f} % | "
            f"{_shown(lv['cpu_cores_busy'], '.2f')} | {_shown(lv['rss_mb'], '.0f', ' MB')} | "
            f"{'yes' if lv['within_targets'] else 'no'} |"
        )
    lines.append(
        f"\nlargest N within targets: **{best}**"
        + (f"; memory per extra session ≈ {per_session_mb:.1f} MB" if per_session_mb is not None else "")
    )
    table = "\n".join(lines)
    print(table)
    summary = {
        "machine": info,
        "pid": os.getpid(),
        "levels": levels,
        "max_sessions_within_targets": best,
        "memory_per_extra_session_mb": per_session_mb,
        "targets": {"first_delta_p95_s": FIRST_DELTA_TARGET_S, "final_p95_s": FINAL_TARGET_S},
    }
    if out_dir is not None:
        write_results(out_dir, "load", summary, table, plots=load_plots(levels))
    return 0


def _sessions(count: int) -> str:
    return f"{count} session" if count == 1 else f"{count} sessions"


def _shown(value: float | None, spec: str, unit: str = "") -> str:
    """A table cell: the value formatted with its unit, or ``-`` when not measured."""
    return "-" if value is None else f"{value:{spec}}{unit}"


def load_plots(levels: list[dict[str, Any]]) -> Plots:
    """The load curves (p95 against sessions, with the targets) and each level's distributions."""
    first_p95, final_p95 = f"{FIRST_DELTA} p95", f"{FINAL} p95"
    return Plots(
        latencies=[
            Series(_sessions(lv["sessions"]), lv[key], panel=panel)
            for panel, key in ((FIRST_DELTA, "first_delta_s"), (FINAL, "final_s"))
            for lv in levels
        ],
        load=LoadCurve(
            sessions=[lv["sessions"] for lv in levels],
            curves={
                first_p95: [lv["first_delta_p95_s"] for lv in levels],
                final_p95: [lv["final_p95_s"] for lv in levels],
            },
            targets={first_p95: FIRST_DELTA_TARGET_S, final_p95: FINAL_TARGET_S},
        ),
    )
