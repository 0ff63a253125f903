"""``bench turns`` offline (no server, no clock): what Smart Turn and the words say at each pause point.

Every pause point of the pause set, heard as the server hands it to the model (the turn's prefix
padding, the speech, then some of the pause), and Whisper ``tiny.en``'s words up to it (what the
speculative final decode gives). The model alone and the model together with the words (as
``semantic_vad`` decides) are compared on the same points, and the model is asked after several
lengths of pause (:func:`pause_sweep`), so any eagerness's setting can be checked for cut-offs
without running the timed bench. Also the cost of one decision (:func:`decision_cost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.audio.resample import StreamResampler
from openrealtime.bench.report import distribution
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.bench.turn_clips import Clip, transcribe

MS_PER_S = 1000
ASR_RATE_HZ = 16_000
DECISIONS_TIMED = 30
PREFIX_MS = 300  # the turn's prefix padding, as the server hands the model (server_vad's default)


@dataclass(frozen=True)
class Verdict:
    """The model's and the words' verdict at one pause point of a clip, heard offline.

    Attributes:
        final: The point is the end of the clip (a complete turn), not a mid-sentence pause.
        pause_ms: How long the pause lasts (``None`` at the end).
        probability: Smart Turn's "complete" with medium's ``check_pause_ms`` of the pause heard.
        words: What Whisper ``tiny.en`` hears up to the pause (the speculative final's words).
        words_complete: Whether they read as finished (the word rule).
        by_pause_ms: Smart Turn's "complete" with each of ``CHECK_PAUSES_MS`` of the pause heard (what
            an eagerness asking that soon would be told).
    """

    voice: str
    text: str
    final: bool
    pause_ms: int | None
    probability: float
    words: str
    words_complete: bool
    by_pause_ms: dict[int, float] = field(default_factory=dict)


# The pauses after which the model could be asked: medium and high ask first at 128 ms, low at 256;
# the shorter ones say whether an eagerness could ask sooner without ending more mid-sentence pauses,
# the longer ones whether asking again sooner than the recheck would end the finished turns it doubted.
CHECK_PAUSES_MS = (64, 96, 128, 160, 256, 384, 512, 768)


def verdicts(clips: list[Clip], check_pauses_ms: tuple[int, ...] = CHECK_PAUSES_MS) -> list[Verdict]:
    """Every pause point of every clip, judged offline at the first question (no server, no clock):
    what the model and the words would decide, so the two can be compared on their own. The model
    is asked with each of ``check_pauses_ms`` of the pause heard; the words are the same for all."""
    from openrealtime.engines.smart_turn import SmartTurn
    from openrealtime.session.endpointing import END_OF_TURN, looks_complete

    model = SmartTurn()
    check_ms = END_OF_TURN["medium"].check_pause_ms
    padding = np.zeros(ASR_RATE_HZ * PREFIX_MS // MS_PER_S, np.float32)
    out: list[Verdict] = []
    for clip in clips:
        points = [(start, end - start, False) for start, end in clip.pauses_ms]
        points.append((clip.speech_end_ms, 0, True))
        for at_ms, length_ms, final in points:
            spoken = clip.audio[: at_ms * WIRE_RATE_HZ // MS_PER_S]
            audio_16k = StreamResampler(WIRE_RATE_HZ, ASR_RATE_HZ).process(spoken, last=True)
            heard: dict[int, float] = {}
            for pause_ms in sorted({*check_pauses_ms, check_ms}):
                pause = np.zeros(ASR_RATE_HZ * pause_ms // MS_PER_S, np.float32)
                heard[pause_ms] = model.completion_probability(np.concatenate([padding, audio_16k, pause]))
            words = transcribe(spoken)
            out.append(
                Verdict(
                    clip.voice,
                    clip.text,
                    final,
                    None if final else length_ms,
                    heard[check_ms],
                    words,
                    looks_complete(words),
                    heard,
                )
            )
    return out


def verdict_rates(points: list[Verdict]) -> dict[str, Any]:
    """Per eagerness: the share of mid-sentence pauses and of clip ends that the first question
    would end, by the model alone and by the model with the words (as ``semantic_vad`` decides);
    and under ``by_pause_ms``, the same with the model asked sooner or later (:func:`pause_sweep`)."""
    from openrealtime.session.endpointing import END_OF_TURN

    pauses = [v for v in points if not v.final]
    ends = [v for v in points if v.final]
    rates: dict[str, Any] = {}
    for eagerness in ("high", "medium", "low"):
        threshold = END_OF_TURN[eagerness].threshold

        def share(group: list[Verdict], *, words: bool, threshold: float = threshold) -> float | None:
            if not group:
                return None
            ended = [v for v in group if v.probability >= threshold and (v.words_complete or not words)]
            return len(ended) / len(group)

        rates[eagerness] = {
            "threshold": threshold,
            "pauses_ended_model_alone": share(pauses, words=False),
            "pauses_ended_model_and_words": share(pauses, words=True),
            "ends_ended_model_alone": share(ends, words=False),
            "ends_ended_model_and_words": share(ends, words=True),
        }
    rates["pause_points"] = len(pauses)
    rates["end_points"] = len(ends)
    rates["pauses_whose_words_look_finished"] = sum(v.words_complete for v in pauses)
    rates["by_pause_ms"] = pause_sweep(points)
    return rates


def pause_sweep(points: list[Verdict], thresholds: tuple[float, ...] = (0.5, 0.7)) -> list[dict[str, Any]]:
    """For each pause the model could be asked after, and each threshold: the share of mid-sentence
    pauses and of clip ends that the model and the words together would end there. A mid-sentence
    pause shorter than that never reaches the question (the speaker is back first), so it counts as
    not ended: ``pauses_ended`` is the share of all pauses that a question at that point would cut.
    Whether an eagerness could ask sooner (or ask again sooner) without more cut-offs, with no clock:
    the same clips heard with more or less silence after them."""
    pauses = [v for v in points if not v.final]
    ends = [v for v in points if v.final]
    heard = sorted({ms for v in points for ms in v.by_pause_ms})

    def ended(v: Verdict, pause_ms: int, threshold: float) -> bool:
        reached = v.pause_ms is None or v.pause_ms > pause_ms
        return reached and v.by_pause_ms[pause_ms] >= threshold and v.words_complete

    def share(group: list[Verdict], pause_ms: int, threshold: float) -> float | None:
        asked = [v for v in group if pause_ms in v.by_pause_ms]
        return sum(ended(v, pause_ms, threshold) for v in asked) / len(asked) if asked else None

    return [
        {
            "pause_ms": ms,
            "threshold": threshold,
            "pauses_ended": share(pauses, ms, threshold),
            "ends_ended": share(ends, ms, threshold),
        }
        for ms in heard
        for threshold in thresholds
    ]


def verdict_table(rates: dict[str, Any]) -> str:
    from openrealtime.session.endpointing import END_OF_TURN

    lines = [
        f"First question ({rates['pause_points']} mid-sentence pauses, {rates['end_points']} clip ends; "
        f"offline, no clock, the model hearing medium's first {END_OF_TURN['medium'].check_pause_ms} ms of pause):",
        "",
        "| eagerness (threshold) | pauses ended: model alone | model + words | ends ended: model alone "
        "| model + words |",
        "|---|---|---|---|---|",
    ]
    for eagerness in ("high", "medium", "low"):
        r = rates[eagerness]
        lines.append(
            f"| {eagerness} ({r['threshold']}) | {r['pauses_ended_model_alone']:.0%} "
            f"| {r['pauses_ended_model_and_words']:.0%} | {r['ends_ended_model_alone']:.0%} "
            f"| {r['ends_ended_model_and_words']:.0%} |"
        )
    sweep = rates.get("by_pause_ms") or []
    if sweep:
        lines += [
            "",
            "Asked after more or less pause (model + words; a pause shorter than that is never asked about):",
            "",
            "| pause heard | threshold | mid-sentence pauses ended | clip ends ended |",
            "|---|---|---|---|",
        ]
        for row in sweep:
            lines.append(
                f"| {row['pause_ms']} ms | {row['threshold']} | {_percent(row['pauses_ended'])} "
                f"| {_percent(row['ends_ended'])} |"
            )
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def decision_cost(decisions: int = DECISIONS_TIMED) -> dict[str, Any]:
    """The end-of-turn model's cost per decision in this process: wall and CPU (thread) time, in ms,
    of ``decisions`` calls on 8 s of audio (the model always hears 8 s, so every decision costs alike),
    and the feature computation's share of it."""
    import time

    from openrealtime.engines.smart_turn import WINDOW_SAMPLES, SmartTurn, log_mel_features

    model = SmartTurn()
    audio = (0.05 * np.random.default_rng(0).standard_normal(WINDOW_SAMPLES)).astype(np.float32)
    model.completion_probability(audio)  # warm
    wall, cpu, features = [], [], []
    for _ in range(decisions):
        started, started_cpu = time.perf_counter(), time.thread_time()
        model.completion_probability(audio)
        wall.append((time.perf_counter() - started) * MS_PER_S)
        cpu.append((time.thread_time() - started_cpu) * MS_PER_S)
        started = time.perf_counter()
        log_mel_features(audio)
        features.append((time.perf_counter() - started) * MS_PER_S)
    return {
        "decisions": decisions,
        "wall_ms": distribution(wall, (50, 90)),
        "cpu_ms": distribution(cpu, (50, 90)),
        "features_wall_ms": distribution(features, (50, 90)),
    }
