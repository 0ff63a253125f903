"""Offline (no server, no clock): does the LLM's end-of-turn token separate a pause from an end?

``python -m openrealtime.bench.turn_end_token`` takes every pause point and clip end of ``bench
turns``' pause set as :mod:`~openrealtime.bench.turn_verdicts` hears them (Smart Turn's probability,
Whisper ``tiny.en``'s words up to the point), and asks the default LLM (SmolLM2-135M-Instruct,
:class:`~openrealtime.engines.end_token.EndTokenModel`) for P(``<|im_end|>``) right after those
words, in several spellings of the words (as heard; without the trailing punctuation Whisper adds;
lower case without any punctuation, as LiveKit's detector is fed) and under two system prompts (the
conversation's default instructions, or the template's own). It prints, per variant, how well P(end)
alone ranks the clip ends over the mid-sentence pauses (AUC) and the shares each threshold would
end, then the rules ``semantic_vad`` could use it in, against today's (Smart Turn and the words):

* *veto*: Smart Turn's "complete" with finished-looking words ends the turn only if P(end) >= t;
* *for the words*: Smart Turn's "complete" with P(end) >= t, instead of the word list;
* *rescue*: besides today's rule, finished-looking words with P(end) >= t end a turn Smart Turn
  called incomplete once the pause reaches 256 / 512 ms (today they wait for the word rule's 1.25 s).

A mid-sentence pause ended is a clip cut off; the shares of clips cut are over the clips with pauses.
The points (Smart Turn and Whisper, the slow part) can be kept in a JSON file (``--points``) and
reused. Also the cost of one question, with the system prompt cached and without.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from openrealtime.bench.turn_verdicts import Verdict
from openrealtime.engines.end_token import plain_words

MS_PER_S = 1000
MEDIUM_THRESHOLD = 0.5  # Smart Turn's threshold at medium (session/endpointing.py)
THRESHOLDS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
COMBINED_VARIANTS = 2  # the combined rules are tabled for the variants that rank best (AUC)
RESCUE_PAUSES_MS = (256, 512)
COST_QUESTIONS = 20

_TRAILING = re.compile(r"[\s.!?,;:\u2026]+$")


def spell(words: str, spelling: str) -> str:
    """``words`` as the LLM is given them: ``heard`` (as Whisper writes them), ``bare`` (without the
    trailing punctuation) or ``plain`` (lower case, no punctuation but apostrophes)."""
    words = words.strip()
    if spelling == "bare":
        return _TRAILING.sub("", words)
    if spelling == "plain":
        return plain_words(words)
    return words


SPELLINGS = ("heard", "bare", "plain")
# The conversation's default instructions; the template's own system prompt; the instructions and an
# exchange before (does a history move the levels?).
PROMPTS = ("instructions", "template", "history")
_EARLIER = ({"role": "user", "content": "What time is it?"}, {"role": "assistant", "content": "It is three o'clock."})


def end_probabilities(points: Sequence[Verdict]) -> dict[str, list[float]]:
    """P(end) at every point, per variant (``spelling/prompt``), from the default LLM."""
    from openrealtime.engines.end_token import EndTokenModel
    from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS

    model = EndTokenModel()
    histories: dict[str, list[dict[str, str]]] = {
        "instructions": [{"role": "system", "content": DEFAULT_INSTRUCTIONS}],
        "template": [],
        "history": [{"role": "system", "content": DEFAULT_INSTRUCTIONS}, *_EARLIER],
    }
    return {
        f"{spelling}/{prompt}": [model.probability(spell(p.words, spelling), histories[prompt]) for p in points]
        for prompt in PROMPTS
        for spelling in SPELLINGS
    }


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


Rule = Callable[[Verdict, float], bool]


def rule_shares(points: Sequence[Verdict], p_end: Sequence[float], ended: Rule) -> dict[str, Any]:
    """What a rule ends: mid-sentence pauses, clips cut off (a clip with any pause ended), clip ends,
    and the ends of the clips with pauses (the ones Smart Turn misjudges)."""
    pauses = [(v, p) for v, p in zip(points, p_end, strict=True) if not v.final]
    ends = [(v, p) for v, p in zip(points, p_end, strict=True) if v.final]
    paused_clips = {(v.voice, v.text) for v, _ in pauses}
    cut = {(v.voice, v.text) for v, p in pauses if ended(v, p)}
    paused_ends = [(v, p) for v, p in ends if (v.voice, v.text) in paused_clips]
    return {
        "pauses_ended": sum(ended(v, p) for v, p in pauses),
        "pauses": len(pauses),
        "clips_cut": len(cut),
        "clips_with_pauses": len(paused_clips),
        "ends_ended": sum(ended(v, p) for v, p in ends),
        "ends": len(ends),
        "paused_ends_ended": sum(ended(v, p) for v, p in paused_ends),
        "paused_ends": len(paused_ends),
    }


def _today(v: Verdict) -> bool:
    return v.probability >= MEDIUM_THRESHOLD and v.words_complete


def _reached(v: Verdict, pause_ms: int) -> bool:
    """Whether the point's pause lasts to ``pause_ms`` (a clip's end always does)."""
    return v.pause_ms is None or v.pause_ms > pause_ms


def rules(threshold: float) -> dict[str, Rule]:
    """The ways ``semantic_vad`` medium could use P(end) at ``threshold``, and today's rule."""
    out: dict[str, Rule] = {
        "veto": lambda v, p: _today(v) and p >= threshold,
        "for the words": lambda v, p: v.probability >= MEDIUM_THRESHOLD and p >= threshold,
    }
    for pause_ms in RESCUE_PAUSES_MS:
        out[f"rescue at {pause_ms} ms"] = _rescue(threshold, pause_ms, veto=False)
        out[f"veto + rescue at {pause_ms} ms"] = _rescue(threshold, pause_ms, veto=True)
    return out


def _rescue(threshold: float, pause_ms: int, *, veto: bool) -> Rule:
    """Today's rule, and finished-looking words with P(end) >= ``threshold`` once the pause reaches
    ``pause_ms``; with ``veto``, nothing ends below the threshold."""

    def ended(v: Verdict, p: float) -> bool:
        rescued = v.words_complete and p >= threshold and _reached(v, pause_ms)
        if veto:
            return p >= threshold and (_today(v) or rescued)
        return _today(v) or rescued

    return ended


def report(points: Sequence[Verdict], scores: dict[str, list[float]]) -> str:
    """The separation tables, as markdown."""
    finals = [v.final for v in points]
    lines = [
        f"P(<|im_end|>) after the words, {finals.count(False)} mid-sentence pauses against {finals.count(True)} "
        "clip ends (AUC: the chance a clip end scores above a pause; shares: P(end) >= t):",
        "",
        "| words / system prompt | AUC | median P: pauses / ends | "
        + " | ".join(f"t = {t:g}: pauses / ends" for t in THRESHOLDS)
        + " |",
        "|---|---|---|" + "---|" * len(THRESHOLDS),
    ]
    for name, values in scores.items():
        ends, pauses = _split(values, finals)
        shares = " | ".join(f"{_share(pauses, t)} / {_share(ends, t)}" for t in THRESHOLDS)
        lines.append(f"| {name} | {auc(ends, pauses):.2f} | {_median(pauses):.1e} / {_median(ends):.1e} | {shares} |")
    today = rule_shares(points, [0.0] * len(points), lambda v, _: _today(v))
    lines += [
        "",
        f"Combined with Smart Turn (medium, 0.5, asked at 128 ms) and the word rule; today: {_row(today)}.",
        "",
        "| words / system prompt | rule | t | mid-sentence pauses ended | clips cut off | clip ends ended "
        "| ends of clips with pauses ended |",
        "|---|---|---|---|---|---|---|",
        f"| - | today | - | {_cells(today)} |",
    ]
    ranked = sorted(scores, key=lambda name: -auc(*_split(scores[name], finals)))
    for name in ranked[:COMBINED_VARIANTS]:
        values = scores[name]
        for threshold in THRESHOLDS:
            for rule, ended in rules(threshold).items():
                lines.append(f"| {name} | {rule} | {threshold:g} | {_cells(rule_shares(points, values, ended))} |")
    return "\n".join(lines)


def _split(values: Sequence[float], finals: Sequence[bool]) -> tuple[list[float], list[float]]:
    """The values at clip ends and at mid-sentence pauses, each sorted."""
    ends = sorted(p for p, f in zip(values, finals, strict=True) if f)
    pauses = sorted(p for p, f in zip(values, finals, strict=True) if not f)
    return ends, pauses


def _row(s: dict[str, Any]) -> str:
    return (
        f"{s['pauses_ended']}/{s['pauses']} mid-sentence pauses ended, {s['clips_cut']}/{s['clips_with_pauses']} "
        f"clips cut off, {s['ends_ended']}/{s['ends']} clip ends ended at the first question"
    )


def _cells(s: dict[str, Any]) -> str:
    return (
        f"{s['pauses_ended']}/{s['pauses']} | {s['clips_cut']}/{s['clips_with_pauses']} | "
        f"{s['ends_ended']}/{s['ends']} | {s['paused_ends_ended']}/{s['paused_ends']}"
    )


def _share(values: Sequence[float], threshold: float) -> str:
    return f"{sum(v >= threshold for v in values) / len(values):.0%}" if values else "-"


def _median(values: Sequence[float]) -> float:
    return values[len(values) // 2] if values else float("nan")


def question_cost(questions: int = COST_QUESTIONS) -> dict[str, float]:
    """CPU ms (this thread) of one question: with the system prompt already evaluated (only the
    user's words are), and from nothing (the whole prompt), on the set's kind of sentence."""
    from openrealtime.bench.turn_clips import COMPLETE, PAUSED
    from openrealtime.engines.end_token import EndTokenModel
    from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS

    model = EndTokenModel()
    system = [{"role": "system", "content": DEFAULT_INSTRUCTIONS}]
    sentences = [spell(text.replace(" |", ""), "plain") for text in (*PAUSED, *COMPLETE)]
    words = [sentences[n % len(sentences)] for n in range(questions)]  # each shares only the system prompt
    out: dict[str, float] = {}
    for name, fresh in (("cached_system_prompt", False), ("whole_prompt", True)):
        cpu, tokens = [], []
        for text in words:
            if fresh:
                model.forget()
            before = model.evaluated_tokens
            started = time.thread_time()
            model.probability(text, system)
            cpu.append((time.thread_time() - started) * MS_PER_S)
            tokens.append(model.evaluated_tokens - before)
        out[f"{name}_cpu_ms_p50"] = sorted(cpu)[len(cpu) // 2]
        out[f"{name}_tokens_p50"] = sorted(tokens)[len(tokens) // 2]
    return out


def load_points(path: Path | None, limit: int | None) -> list[Verdict]:
    """The set's points, read from ``path`` if it exists, else heard (and written to it)."""
    if path is not None and path.exists():
        return [Verdict(**row) for row in json.loads(path.read_text())]
    from openrealtime.bench.turn_clips import pause_set
    from openrealtime.bench.turn_verdicts import verdicts

    points = verdicts(pause_set(limit))
    if path is not None:
        path.write_text(json.dumps([asdict(v) for v in points]))
    return points


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=Path, help="a JSON file of the heard points: read if it exists, else written")
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips of each kind")
    parser.add_argument("--out", type=Path, help="write the table and every point's P(end) here (JSON)")
    args = parser.parse_args(argv)
    points = load_points(args.points, args.limit)
    scores = end_probabilities(points)
    text = report(points, scores)
    cost = question_cost()
    text += (
        f"\n\nOne question's CPU (one thread): {cost['cached_system_prompt_cpu_ms_p50']:.1f} ms with the system "
        f"prompt cached ({cost['cached_system_prompt_tokens_p50']:.0f} tokens evaluated), "
        f"{cost['whole_prompt_cpu_ms_p50']:.1f} ms for the whole prompt ({cost['whole_prompt_tokens_p50']:.0f} tokens)"
    )
    print(text)
    if args.out is not None:
        rows = [{**asdict(v), "p_end": {k: s[i] for k, s in scores.items()}} for i, v in enumerate(points)]
        args.out.write_text(json.dumps({"table": text, "cost": cost, "points": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
