"""What the first clause of an answer costs (issue 13), and where to cut it.

``python -m openrealtime.bench.first_clause`` loads the default LLM and voice in process (no server)
and, for the end-of-turn set's kind of questions with the default instructions:

1. streams each answer from the LLM and notes when each token came (wall time from the request, one
   session's prompt cache, as a realtime session's);
2. for each first-clause cut (:class:`~openrealtime.session.clauses.ClauseSplitter`'s
   ``first_max_chars``) cuts the answer into the clauses the writer would speak, synthesizes each
   with piper (wall and CPU time, audio length, silence piper leaves at its start and end);
3. replays the writer (:mod:`~openrealtime.session.responses`: one synthesis at a time, each clause
   when the LLM has completed it and the one before is synthesized) and reports when the first audio
   would be ready and the gaps between clauses (a clause not ready when the one before has played).

The LLM and the voice run one after the other, never together, and each question's runs follow each
other (LLM, voice, LLM, voice), so a busy machine inflates both alike; the report gives medians over
the questions and repeats. It prints one JSON object. On two shared cores the engines' times are the
machine's: compare the cuts with each other, within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openrealtime.contracts import ChatRequest, TextDelta
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.realtime import DEFAULT_INSTRUCTIONS

QUESTIONS = (
    "What is the capital of France?",
    "Which ocean is the largest?",
    "Thank you very much for your help.",
    "I need a flight from Boston to Chicago on Friday.",
    "Can you tell me a fun fact about octopuses?",
    "How many days are in a week?",
)
CUTS = (16, 20, 24, 32, 40)  # first_max_chars; 40 was the default
MAX_TOKENS = 64
SILENCE = 1e-3  # |sample| under this is silence (piper's edges)
GAP_S = 0.05  # a gap shorter than this is not counted


@dataclass(frozen=True)
class Answer:
    """One streamed answer: its token texts and when each came (s from the request)."""

    question: str
    pieces: list[str]
    times_s: list[float]


@dataclass(frozen=True)
class Spoken:
    """One clause synthesized: wall / CPU seconds, audio seconds, silence at its start and end."""

    wall_s: float
    cpu_s: float
    audio_s: float
    lead_silence_s: float
    tail_silence_s: float


@dataclass
class Replay:
    """The writer replayed over one answer with one cut."""

    clauses: list[str] = field(default_factory=list)
    first_audio_s: float = 0.0
    gaps_s: list[float] = field(default_factory=list)


def clauses_with_times(answer: Answer, first_max_chars: int) -> list[tuple[str, float]]:
    """The clauses the writer would speak, each with the time the LLM completed it."""
    splitter = ClauseSplitter(first_max_chars=first_max_chars)
    out: list[tuple[str, float]] = []
    for piece, at in zip(answer.pieces, answer.times_s, strict=True):
        out += [(c, at) for c in splitter.feed(piece)]
    end = answer.times_s[-1] if answer.times_s else 0.0
    return out + [(c, end) for c in splitter.flush()]


def replay(timed: list[tuple[str, float]], spoken: dict[str, Spoken]) -> Replay:
    """One synthesis at a time, each clause once written and the one before synthesized; a clause
    plays when it is synthesized and the one before has played (a gap if it was not ready then)."""
    result = Replay(clauses=[c for c, _ in timed])
    synth_end = 0.0
    plays_until: float | None = None
    for clause, written_at in timed:
        s = spoken[clause]
        synth_end = max(written_at, synth_end) + s.wall_s
        if plays_until is None:
            result.first_audio_s = synth_end
            start = synth_end
        else:
            start = max(synth_end, plays_until)
            if start - plays_until > GAP_S:
                result.gaps_s.append(start - plays_until)
        plays_until = start + s.audio_s
    return result


def silence_at_edges(audio: np.ndarray, rate_hz: int) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio) > SILENCE)
    if not loud.size:
        return audio.size / rate_hz, 0.0
    return loud[0] / rate_hz, (audio.size - 1 - loud[-1]) / rate_hz


def stream_answer(llm: Any, question: str, cache_key: str) -> Answer:
    messages = [{"role": "system", "content": DEFAULT_INSTRUCTIONS}, {"role": "user", "content": question}]
    request = ChatRequest(messages=messages, max_tokens=MAX_TOKENS, cache_key=cache_key)
    pieces, times = [], []
    started = time.perf_counter()
    for chunk in llm.chat(request, threading.Event()):
        if isinstance(chunk, TextDelta) and chunk.text:
            pieces.append(chunk.text)
            times.append(time.perf_counter() - started)
    return Answer(question, pieces, times)


def speak(tts: Any, clause: str) -> Spoken:
    wall, cpu = time.perf_counter(), time.process_time()
    chunks = list(tts.synthesize(clause, voice="alloy", stop=threading.Event()))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    lead, tail = silence_at_edges(audio, tts.sample_rate_hz)
    return Spoken(wall, cpu, audio.size / tts.sample_rate_hz, lead, tail)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def report(answers: list[Answer], replays: dict[int, list[Replay]], spoken: dict[str, list[Spoken]]) -> dict[str, Any]:
    """Per cut: the first clause (chars, synthesis, audio), first audio and gaps, medians."""
    cuts = {}
    for cut, runs in replays.items():
        firsts = [r.clauses[0] for r in runs if r.clauses]
        first_spoken = [s for c in firsts for s in spoken[c]]
        cuts[str(cut)] = {
            "first_clause_chars": _median([len(c) for c in firsts]),
            "first_clause_synth_wall_s": _median([s.wall_s for s in first_spoken]),
            "first_clause_synth_cpu_s": _median([s.cpu_s for s in first_spoken]),
            "first_clause_audio_s": _median([s.audio_s for s in first_spoken]),
            "first_clause_tail_silence_s": _median([s.tail_silence_s for s in first_spoken]),
            "first_audio_s": _median([r.first_audio_s for r in runs]),
            "first_audio_p90_s": round(float(np.percentile([r.first_audio_s for r in runs], 90)), 3),
            "answers_with_a_gap": f"{sum(bool(r.gaps_s) for r in runs)}/{len(runs)}",
            "gap_total_p50_s": _median([sum(r.gaps_s) for r in runs]),
            "gap_max_s": round(max((max(r.gaps_s) for r in runs if r.gaps_s), default=0.0), 3),
            "gapped": [r.clauses[:3] for r in runs if r.gaps_s],
            "first_clauses": sorted(set(firsts)),
        }
    token_s = [(a.times_s[-1] - a.times_s[0]) / (len(a.times_s) - 1) for a in answers if len(a.times_s) > 1]
    return {
        "first_token_s": _median([a.times_s[0] for a in answers if a.times_s]),
        "per_token_s": _median(token_s),
        "cuts": cuts,
        "answers": sorted({"".join(a.pieces) for a in answers}),
    }


def run(repeats: int, questions: Sequence[str] = QUESTIONS, cuts: Sequence[int] = CUTS) -> dict[str, Any]:
    from openrealtime.engines.llama_chat import LlamaChatModel
    from openrealtime.engines.piper_tts import PiperSynthesizer

    llm, tts = LlamaChatModel(), PiperSynthesizer()
    try:
        stream_answer(llm, "Hello.", "first-clause")  # the instructions cached, as in a session
        answers: list[Answer] = []
        replays: dict[int, list[Replay]] = {cut: [] for cut in cuts}
        spoken: dict[str, list[Spoken]] = {}
        for _ in range(repeats):
            for question in questions:
                answer = stream_answer(llm, question, "first-clause")
                answers.append(answer)
                timed = {cut: clauses_with_times(answer, cut) for cut in cuts}
                this_run: dict[str, Spoken] = {}
                for clause in dict.fromkeys(c for t in timed.values() for c, _ in t):
                    this_run[clause] = speak(tts, clause)
                    spoken.setdefault(clause, []).append(this_run[clause])
                for cut in cuts:
                    replays[cut].append(replay(timed[cut], this_run))
        return report(answers, replays, spoken)
    finally:
        llm.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each question (medians over all)")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many of the questions")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.repeats, QUESTIONS[: args.questions]), indent=2))


if __name__ == "__main__":
    main()
