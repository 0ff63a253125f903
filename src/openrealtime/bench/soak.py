"""``openrealtime bench soak``: one voice conversation held for an hour at real-time pace.

One realtime session (``server_vad``, the default models; this package's server started here, or
``--url``) is driven by the assistant client exactly as in ``bench assistant``: a simulated microphone
streams 20 ms chunks at wall-clock pace, silence between turns included; each answer is played at
real-time pace (:class:`~openrealtime.client.playback.ClockPlayer`) before the next question is
asked. The questions are varied; the first turn states a name, and one turn near the end asks for it
back, to show whether earlier context still reaches the model (reported, never a pass or a fail:
trimming the context to fit may drop it).

The session lifetime is the server's own (60 minutes by default, ``--session-lifetime-s``): the
assistant client moves the conversation to a new session, history replayed, a minute before
``expires_at``, as the tutorial's ``openrealtime assistant`` does, and the run reports how often it did.

Reported: turns spoken and answered, turns with an error (by code: ``error`` events and failed
responses), ``speech_stopped`` -> first audio p50/p90/max per 10-minute block (so drift shows), the
server's resident memory per block when it runs in this process, and the recall turn's answer.
``--memory`` measures instead whether closed sessions are freed (:mod:`~openrealtime.bench.memory`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openrealtime.audio.types import Samples
from openrealtime.bench.assistant import (
    QUESTIONS,
    REALTIME_PATH,
    TRANSCRIPTION_MODEL,
    EventLog,
    SimulatedMicrophone,
)
from openrealtime.bench.load import rss_mb
from openrealtime.bench.report import Plots, Series, distribution, progress, write_results
from openrealtime.bench.speech import WIRE_RATE_HZ, silence, speak
from openrealtime.bench.target import server_target
from openrealtime.client.assistant import Assistant
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.playback import ClockPlayer

DEFAULT_MINUTES = 60.0
BLOCK_S = 600.0  # latency is reported per block of this many seconds of the run
TURN_TIMEOUT_S = 90.0  # a question with no complete answer by then counts as unanswered
GAP_MS = 800  # silence after an answer has been heard, before the next question
RECALL_LEAD_S = 120.0  # the recall question is asked once this much of the run is left
PCM16_BYTES = 2
REPORTED_QUANTILES = (50, 90)
NAME = "Peter"
NAME_STATEMENT = f"Hello, my name is {NAME} and I live in a small town by the sea."
RECALL_QUESTION = "Do you remember my name? What is my name?"
MORE_QUESTIONS = (
    "How many minutes are in an hour?",
    "What is the tallest mountain in the world?",
    "Can you suggest a good breakfast?",
    "What is the capital of Germany?",
    "Why do leaves turn yellow in autumn?",
    "How far away is the moon?",
    "What should I pack for a weekend trip?",
    "Which fruit is yellow and curved?",
    "What is the main ingredient of guacamole?",
    "How do I make a cup of tea?",
    "What is the largest animal on earth?",
    "Can you name a famous painter?",
    "How many strings does a guitar have?",
    "What is the chemical symbol for gold?",
    "Give me a tip for sleeping better.",
    "What is the longest river in Africa?",
    "How many players are in a football team?",
    "What do you call a baby cat?",
    "Which season comes after winter?",
    "What is ten times ten?",
)
SOAK_QUESTIONS = (*QUESTIONS, *MORE_QUESTIONS)

Speech = Callable[[str], Samples]


@dataclass
class SoakLog(EventLog):
    """:class:`EventLog`, plus the errors and each response's audio length (payloads are not kept)."""

    errors: list[tuple[float, str]] = field(default_factory=list)  # (arrival, code) of each error event
    failed: list[tuple[float, str]] = field(default_factory=list)  # (arrival, code) of each failed response
    audio_bytes: Counter[str] = field(default_factory=Counter)  # response -> PCM16 bytes of audio

    def __call__(self, event: dict[str, Any], at_s: float) -> None:
        super().__call__(event, at_s)
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            encoded = str(event.get("delta") or "")
            self.audio_bytes[event["response_id"]] += len(encoded) * 3 // 4 - encoded[-2:].count("=")
        elif kind == "error":
            error = event.get("error") or {}
            self.errors.append((at_s, str(error.get("code") or error.get("type") or "unknown")))
        elif kind == "response.done" and event["response"].get("status") == "failed":
            details = event["response"].get("status_details") or {}
            error = details.get("error") or {}
            self.failed.append((at_s, str(error.get("code") or details.get("reason") or "unknown")))


@dataclass
class SoakTurn:
    """One question of the conversation: when it was asked (seconds since the run began), what was
    heard and answered, its latency, the audio heard, and the error codes that came during it."""

    index: int
    at_s: float
    question: str
    heard: str
    answer: str
    stopped_to_first_audio_s: float | None
    answer_audio_s: float
    errors: list[str]
    rss_mb: float | None = None  # after the turn, when the server runs in this process
    user_items: int = 1  # the user items the turn made (more: the question was split, or heard twice)

    @property
    def answered(self) -> bool:
        return self.stopped_to_first_audio_s is not None


@dataclass
class SoakRun:
    """What one soak run saw."""

    duration_s: float
    turns: list[SoakTurn]
    reconnects: int
    sessions: int
    recall: SoakTurn | None


async def _turn(
    assistant: Assistant, mic: SimulatedMicrophone, log: SoakLog, question: str, speech: Speech, started: float
) -> SoakTurn:
    loop = asyncio.get_running_loop()
    window_start = loop.time()
    responses_before = len(assistant.responses)
    items_before = {i.id for i in assistant.history.items()}
    errors_before, failed_before = len(log.errors), len(log.failed)
    await mic.say(speech(question))
    try:
        await assistant.wait_until(
            lambda: len(assistant.responses) > responses_before and assistant.idle(), timeout_s=TURN_TIMEOUT_S
        )
        await assistant.player.drained()  # the listener hears the whole answer before speaking again
    except TimeoutError:
        pass  # reported as a turn without an answer
    await mic.say(silence(GAP_MS))
    # The last response with audio answers the whole question (a pause may have split it).
    answered = [r for r in log.responses_between(window_start, loop.time()) if r in log.first_audio_at]
    new = [i for i in assistant.history.items() if i.id not in items_before]
    users = [i for i in new if i.role == "user"]
    heard = " ".join(i.text for i in users)
    answer = " ".join(i.text for i in new if i.role == "assistant")
    codes = [code for _, code in log.errors[errors_before:]] + [code for _, code in log.failed[failed_before:]]
    latency = None
    if answered:
        rid = answered[-1]
        item = log.response_item.get(rid)
        stopped = log.stopped_at.get(item) if item is not None else None
        latency = log.first_audio_at[rid] - stopped if stopped is not None else None
    audio_s = sum(log.audio_bytes[r] for r in answered) / PCM16_BYTES / WIRE_RATE_HZ
    return SoakTurn(0, window_start - started, question, heard, answer, latency, audio_s, codes, user_items=len(users))


async def soak(
    url: str,
    *,
    duration_s: float,
    api_key: str | None = None,
    speech: Speech = speak,
    recall_lead_s: float = RECALL_LEAD_S,
    rss: Callable[[], float] | None = None,
) -> SoakRun:
    """Hold one voice conversation at ``url`` for ``duration_s``: ask, wait, listen, ask again.

    The name statement is the first turn; the recall question is the first turn that starts once
    ``recall_lead_s`` (at most half the run) is left. No turn starts after ``duration_s``.

    Args:
        speech: Text to 24 kHz float32 speech (piper by default).
        rss: Sampled after every turn (the server's memory when it runs in this process).
    """
    loop = asyncio.get_running_loop()
    log = SoakLog()
    mic = SimulatedMicrophone()
    options = AssistantOptions(url=url, api_key=api_key, transcription_model=TRANSCRIPTION_MODEL)
    assistant = Assistant(options, player=ClockPlayer(), on_event=log)
    turns: list[SoakTurn] = []
    recall: SoakTurn | None = None
    recall_at_s = duration_s - min(recall_lead_s, duration_s / 2)
    cycle = itertools.cycle(SOAK_QUESTIONS)
    started = loop.time()
    async with assistant, asyncio.TaskGroup() as tg:
        tg.create_task(assistant.stream(mic.chunks()))
        try:
            while (elapsed := loop.time() - started) < duration_s:
                if not turns:
                    question = NAME_STATEMENT
                elif recall is None and elapsed >= recall_at_s:
                    question = RECALL_QUESTION
                else:
                    question = next(cycle)
                turn = await _turn(assistant, mic, log, question, speech, started)
                turn.index = len(turns) + 1
                turn.rss_mb = rss() if rss is not None else None
                turns.append(turn)
                if question == RECALL_QUESTION:
                    recall = turn
                latency = turn.stopped_to_first_audio_s
                shown = f"{latency:.2f} s" if latency is not None else "no answer"
                shown += f" [{', '.join(turn.errors)}]" if turn.errors else ""
                progress(
                    "turn", turn.index, None, f"{turn.at_s / 60:5.1f} min {shown:>9}  {turn.heard!r} -> {turn.answer!r}"
                )
        finally:
            mic.stop()
    return SoakRun(loop.time() - started, turns, assistant.reconnects, 1 + assistant.reconnects, recall)


# --- the report -------------------------------------------------------------------------------------


def blocks(turns: list[SoakTurn], block_s: float = BLOCK_S) -> list[dict[str, Any]]:
    """Per ``block_s`` of the run (by when each turn was asked): turns spoken, answered, with errors,
    the latency distribution and the RSS after the block's last turn."""
    grouped: dict[int, list[SoakTurn]] = {}
    for turn in turns:
        grouped.setdefault(int(turn.at_s // block_s), []).append(turn)
    out = []
    for number, group in sorted(grouped.items()):
        latencies = [t.stopped_to_first_audio_s for t in group if t.stopped_to_first_audio_s is not None]
        out.append(
            {
                "from_min": number * block_s / 60,
                "to_min": (number + 1) * block_s / 60,
                "spoken": len(group),
                "answered": len(latencies),
                "with_error": sum(bool(t.errors) for t in group),
                "stopped_to_first_audio_s": distribution(latencies, REPORTED_QUANTILES),
                "rss_mb": group[-1].rss_mb,
            }
        )
    return out


def summarize(run: SoakRun, *, block_s: float = BLOCK_S, lifetime_s: int | None = None) -> dict[str, Any]:
    """The run's figures, as ``results.json`` holds them."""
    turns = run.turns
    latencies = [t.stopped_to_first_audio_s for t in turns if t.stopped_to_first_audio_s is not None]
    codes = Counter(code for t in turns for code in t.errors)
    rss = [t.rss_mb for t in turns if t.rss_mb is not None]
    recall = run.recall
    return {
        "minutes": run.duration_s / 60,
        "turns_spoken": len(turns),
        "turns_answered": len(latencies),
        "turns_with_error": sum(bool(t.errors) for t in turns),
        "errors_by_code": dict(codes),
        "turns_with_several_user_items": sum(t.user_items > 1 for t in turns),
        "answer_audio_s": sum(t.answer_audio_s for t in turns),
        "stopped_to_first_audio_s": distribution(latencies, REPORTED_QUANTILES),
        "blocks": blocks(turns, block_s),
        "rss_start_mb": rss[0] if rss else None,
        "rss_end_mb": rss[-1] if rss else None,
        "session_lifetime_s": lifetime_s,
        "sessions": run.sessions,
        "reconnects": run.reconnects,
        "recall": None
        if recall is None
        else {
            "question": recall.question,
            "at_min": recall.at_s / 60,
            "heard": recall.heard,
            "answer": recall.answer,
            "mentions_name": NAME.lower() in recall.answer.lower(),
        },
        "turn_details": [asdict(t) for t in turns],
    }


def _ms(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "no answer"
    return f"{stats['p50']:.3f} / {stats['p90']:.3f} / {stats['max']:.3f} s"


def table(summary: dict[str, Any]) -> str:
    """The markdown the command prints and ``summary.md`` holds."""
    errors = ", ".join(f"{code} x{n}" for code, n in sorted(summary["errors_by_code"].items())) or "none"
    lines = [
        "| metric | value |",
        "|---|---|",
        f"| run | {summary['minutes']:.1f} min |",
        f"| turns answered / spoken (goal: every one) | {summary['turns_answered']} / {summary['turns_spoken']} |",
        f"| turns with an error | {summary['turns_with_error']} ({errors}) |",
        f"| speech_stopped → first audio, p50 / p90 / max | {_ms(summary['stopped_to_first_audio_s'])} |",
        f"| answer audio heard | {summary['answer_audio_s'] / 60:.1f} min |",
        f"| turns whose question made more than one user item | {summary['turns_with_several_user_items']} |",
    ]
    lifetime = summary["session_lifetime_s"]
    moved = f"{summary['reconnects']} (client reconnects before expires_at, history replayed)"
    if lifetime is not None:
        moved += f"; server session lifetime {lifetime} s"
    lines.append(f"| sessions / moves to a new session | {summary['sessions']} / {moved} |")
    if summary["rss_start_mb"] is not None:
        lines.append(
            f"| server process RSS after the first / last turn | {summary['rss_start_mb']:.0f} / "
            f"{summary['rss_end_mb']:.0f} MB |"
        )
    recall = summary["recall"]
    if recall is not None:
        lines.append(
            f"| recall at {recall['at_min']:.1f} min: heard → answer | {recall['heard']!r} → {recall['answer']!r} "
            f"(names {NAME}: {'yes' if recall['mentions_name'] else 'no'}; reported, not judged) |"
        )
    lines += [
        "",
        "| block | spoken | answered | with error | speech_stopped → first audio p50 / p90 / max | RSS at end |",
        "|---|---|---|---|---|---|",
    ]
    for block in summary["blocks"]:
        rss = f"{block['rss_mb']:.0f} MB" if block["rss_mb"] is not None else "-"
        lines.append(
            f"| {block['from_min']:g}–{block['to_min']:g} min | {block['spoken']} | {block['answered']} | "
            f"{block['with_error']} | {_ms(block['stopped_to_first_audio_s'])} | {rss} |"
        )
    return "\n".join(lines)


def soak_plots(summary: dict[str, Any], block_s: float = BLOCK_S) -> Plots:
    """The latency distribution of each block, one line per block."""
    panel = "speech_stopped → first audio, per block"
    per_block: dict[str, list[float]] = {}
    for turn in summary["turn_details"]:
        if turn["stopped_to_first_audio_s"] is not None:
            block = int(turn["at_s"] // block_s)
            label = f"{block * block_s / 60:g}–{(block + 1) * block_s / 60:g} min"
            per_block.setdefault(label, []).append(turn["stopped_to_first_audio_s"])
    return Plots(latencies=tuple(Series(label, values, panel=panel) for label, values in per_block.items()))


async def run_soak_bench(
    *,
    url: str | None,
    out_dir: Path | None,
    minutes: float = DEFAULT_MINUTES,
    api_key: str | None = None,
    speech: Speech = speak,
    block_s: float = BLOCK_S,
) -> int:
    """The ``bench soak`` command: one conversation for ``minutes``, then its report."""
    for text in (NAME_STATEMENT, RECALL_QUESTION, *SOAK_QUESTIONS):  # synthesize before any timing
        speech(text)
    async with server_target(url, REALTIME_PATH, api_key=api_key) as target:
        lifetime = target.settings.session_lifetime_s if target.settings is not None else None
        where = f"server session lifetime {lifetime} s" if lifetime is not None else "the server's session lifetime"
        print(
            f"bench soak: one voice conversation for {minutes:g} min at real-time pace ({where}; the client "
            "moves to a new session before expires_at, history replayed, as the tutorial's assistant does)",
            flush=True,
        )
        run = await soak(
            target.url,
            duration_s=minutes * 60,
            api_key=target.api_key,
            speech=speech,
            rss=rss_mb if target.in_process else None,
        )
        info = target.machine()
    summary = {"machine": info, **summarize(run, block_s=block_s, lifetime_s=lifetime)}
    text = table(summary)
    print(text)
    if out_dir is not None:
        write_results(out_dir, "soak", summary, text, plots=soak_plots(summary, block_s))
    return 0
