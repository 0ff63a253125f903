"""``openrealtime bench load``: how many real-time transcription sessions one machine sustains.

For N = 1, 2, 4, ... concurrent sessions, each streams real speech at real-time pace (staggered
starts, so turns do not all end at once); it reports first-delta and final-transcript p95 per N and
the largest N within the targets (first delta p95 under 1.0 s, final p95 under 0.3 s), with CPU and
memory per session when the server runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from openrealtime.bench.speech import SENTENCES, speak
from openrealtime.bench.transcription import machine, measure, percentile, write_results

FIRST_DELTA_TARGET_S = 1.0
FINAL_TARGET_S = 0.3
STAGGER_S = 0.37
TURNS_PER_SESSION = 4


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def _one_level(url: str, sessions: int) -> dict[str, Any]:
    async def session(index: int) -> list[Any]:
        await asyncio.sleep(index * STAGGER_S)  # staggering the starts (pacing, not ordering)
        texts = [SENTENCES[(index * TURNS_PER_SESSION + k) % len(SENTENCES)] for k in range(TURNS_PER_SESSION)]
        timings, _, _ = await measure(url, texts)
        return timings

    cpu0, wall0, rss0 = time.process_time(), time.perf_counter(), rss_mb()
    results = await asyncio.gather(*(session(i) for i in range(sessions)))
    cpu, wall, rss = time.process_time() - cpu0, time.perf_counter() - wall0, rss_mb()
    firsts = [t.first_delta_after_onset_s for r in results for t in r if t.first_delta_after_onset_s is not None]
    finals = [t.final_after_stop_s for r in results for t in r if t.final_after_stop_s is not None]
    first_p95 = percentile(firsts, 95) if firsts else float("inf")
    final_p95 = percentile(finals, 95) if finals else float("inf")
    return {
        "sessions": sessions,
        "turns": sum(len(r) for r in results),
        "first_delta_p95_s": first_p95,
        "final_p95_s": final_p95,
        "cpu_cores_busy": cpu / wall,
        "rss_mb": rss,
        "rss_growth_mb": rss - rss0,
        "within_targets": first_p95 <= FIRST_DELTA_TARGET_S and final_p95 <= FINAL_TARGET_S,
    }


async def run_load_bench(*, url: str | None, out_dir: Path | None, max_sessions: int) -> int:
    levels: list[dict[str, Any]] = []
    print("synthesizing the test speech …", flush=True)
    for text in SENTENCES:  # before any timing: piper in the event loop would stall every session
        speak(text)
    counts = [n for n in (1, 2, 4, 6, 8, 10, 12, 16) if n <= max_sessions]

    async def run_all(base_url: str) -> None:
        for n in counts:
            print(f"bench load: {n} concurrent transcription sessions …", flush=True)
            level = await _one_level(base_url, n)
            levels.append(level)
            print(
                f"  first delta p95 {level['first_delta_p95_s']:.2f} s, final p95 {level['final_p95_s']:.3f} s, "
                f"{level['cpu_cores_busy']:.2f} cores busy, RSS {level['rss_mb']:.0f} MB",
                flush=True,
            )
            if not level["within_targets"] and n > 1:
                break

    if url is None:
        from openrealtime.server.embedded import running_server

        async with running_server() as base:
            await run_all(f"{base}/v1/realtime?intent=transcription")
    else:
        await run_all(url)
    passing = [lv["sessions"] for lv in levels if lv["within_targets"]]
    best = max(passing) if passing else 0
    per_session_mb = None
    if len(levels) >= 2 and url is None:
        per_session_mb = (levels[-1]["rss_mb"] - levels[0]["rss_mb"]) / max(1, levels[-1]["sessions"] - 1)
    lines = [
        "| sessions | first delta p95 | final p95 | CPU cores busy | RSS | within targets |",
        "|---|---|---|---|---|---|",
    ]
    for lv in levels:
        lines.append(
            f"| {lv['sessions']} | {lv['first_delta_p95_s']:.2f} s | {lv['final_p95_s']:.3f} s | "
            f"{lv['cpu_cores_busy']:.2f} | {lv['rss_mb']:.0f} MB | {'yes' if lv['within_targets'] else 'no'} |"
        )
    lines.append(
        f"\nlargest N within targets: **{best}**"
        + (f"; memory per extra session ≈ {per_session_mb:.1f} MB" if per_session_mb is not None else "")
    )
    table = "\n".join(lines)
    print(table)
    summary = {
        "machine": machine(),
        "pid": os.getpid(),
        "levels": levels,
        "max_sessions_within_targets": best,
        "memory_per_extra_session_mb": per_session_mb,
        "targets": {"first_delta_p95_s": FIRST_DELTA_TARGET_S, "final_p95_s": FINAL_TARGET_S},
    }
    if out_dir is not None:
        write_results(out_dir, "load", summary, table)
    return 0
