"""Engines on another server, measured: ``bench assistant --remote-engines`` and ``bench transcription
--remote-engines``.

:func:`engine_server` starts a second openrealtime in its own process (the same ``OPENREALTIME_*``
settings, so the same Whisper model and voice) and yields the settings that make a front door use
it as its ASR and voice (``asr_url``, ``tts_url``) over loopback HTTP. ``bench assistant
--remote-engines`` asks the same questions of a front door with everything in process, then of one
with its ASR and voice on the engine server, and prints the two side by side: the wait from
``speech_stopped`` (and from the end of the speech sent) to the first audio, and from
``response.created`` to it (the LLM and the first clause's voice; the final transcript is usually
ready at ``speech_stopped``, decoded speculatively in the pause). ``bench transcription
--remote-engines`` runs its usual captions bench against a front door whose ASR is remote (compare
with a run without the flag).
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from openrealtime.bench.assistant import QUESTIONS, REALTIME_PATH, TurnTiming, measure_turns
from openrealtime.bench.report import distribution, percentile, write_results
from openrealtime.bench.server_process import spawned_server
from openrealtime.bench.target import server_target

HTTP_API_PATH = "/v1"


@contextlib.asynccontextmanager
async def engine_server() -> AsyncIterator[dict[str, Any]]:
    """A second openrealtime (its own process) serving ``/v1/audio/*``; yields a front door's
    settings overrides that use it as the ASR and the voice."""
    print("starting a second openrealtime (its own process) as the ASR and the voice …", flush=True)
    async with spawned_server() as server:
        api = server.base_url.replace("ws://", "http://", 1) + HTTP_API_PATH
        print(f"engine server at {api}", flush=True)
        yield {"asr_url": api, "tts_url": api}


@contextlib.asynccontextmanager
async def maybe_engine_server(enabled: bool) -> AsyncIterator[dict[str, Any]]:
    """:func:`engine_server`'s overrides when ``enabled``, else none."""
    if not enabled:
        yield {}
        return
    async with engine_server() as overrides:
        yield overrides


def _stage(timings: Sequence[TurnTiming], pick: Callable[[TurnTiming], float | None]) -> list[float]:
    return [value for t in timings if (value := pick(t)) is not None]


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} / {percentile(values, 90):.3f} s"


STAGES: tuple[tuple[str, Callable[[TurnTiming], float | None]], ...] = (
    ("speech_stopped → first audio", lambda t: t.stopped_to_first_audio_s),
    ("end of speech (sent) → first audio", lambda t: t.speech_end_to_first_audio_s),
    ("response.created → first audio (LLM + first clause's voice)", lambda t: t.created_to_first_audio_s),
)


async def run_remote_assistant_bench(*, out_dir: Path | None, turns: int) -> int:
    """``bench assistant --remote-engines``: ``turns`` questions in process, then with remote engines."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
    print(f"bench assistant --remote-engines: {turns} spoken turns in process, then with remote ASR/TTS", flush=True)
    runs: dict[str, tuple[list[TurnTiming], int]] = {}
    info: dict[str, Any] = {}
    for name, remote in (("in_process", False), ("remote_engines", True)):
        print(f"{name.replace('_', ' ')} …", flush=True)
        async with (
            maybe_engine_server(remote) as overrides,
            server_target(None, REALTIME_PATH, api_key=None, overrides=overrides) as target,
        ):
            runs[name] = await measure_turns(target.url, questions, api_key=target.api_key)
            info[name] = target.machine()
    local, remote_run = runs["in_process"][0], runs["remote_engines"][0]
    lines = [
        "| p50 / p90 | in process | ASR and voice on a second openrealtime (loopback HTTP) |",
        "|---|---|---|",
        f"| turns answered / spoken | {len(_stage(local, STAGES[0][1]))} / {len(local)} "
        f"| {len(_stage(remote_run, STAGES[0][1]))} / {len(remote_run)} |",
    ]
    lines += [
        f"| {label} | {_cell(_stage(local, pick))} | {_cell(_stage(remote_run, pick))} |" for label, pick in STAGES
    ]
    lines.append(f"| errors | {runs['in_process'][1]} | {runs['remote_engines'][1]} |")
    table = "\n".join(lines)
    print(table)
    if out_dir is not None:
        summary = {
            "machine": info["in_process"],
            "remote_machine": info["remote_engines"],
            **{
                name: {
                    "turns": len(timings),
                    "errors": errors,
                    **{label: distribution(_stage(timings, pick)) for label, pick in STAGES},
                    "turn_details": [asdict(t) for t in timings],
                }
                for name, (timings, errors) in runs.items()
            },
        }
        write_results(out_dir, "assistant_remote_engines", summary, table)
    return 0
