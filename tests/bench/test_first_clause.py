"""bench/first_clause.py: the writer replayed over a timed answer (no models)."""

from __future__ import annotations

import numpy as np

from openrealtime.bench.first_clause import Answer, Spoken, clauses_with_times, replay, silence_at_edges


def spoken(wall_s: float, audio_s: float) -> Spoken:
    return Spoken(wall_s=wall_s, cpu_s=wall_s, audio_s=audio_s, lead_silence_s=0.0, tail_silence_s=0.0)


def test_each_clause_is_timed_when_the_llm_completed_it() -> None:
    # A cut is known one token late: "...France is" is 24 characters, " Paris." makes it longer; a
    # sentence ends at the space after its stop.
    answer = Answer(
        "q", ["The capital", " of France", " is", " Paris.", " It is", " big."], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    )
    assert clauses_with_times(answer, 24) == [("The capital of France", 0.4), ("is Paris.", 0.5), ("It is big.", 0.6)]
    assert clauses_with_times(answer, 40) == [("The capital of France is Paris.", 0.5), ("It is big.", 0.6)]


def test_the_replay_synthesizes_one_clause_at_a_time_and_counts_gaps() -> None:
    timed = [("a", 0.1), ("b", 0.2), ("c", 2.0)]
    result = replay(timed, {"a": spoken(0.1, 1.0), "b": spoken(0.5, 0.5), "c": spoken(0.2, 1.0)})
    assert result.first_audio_s == 0.2  # written at 0.1, synthesized in 0.1
    # "b": synthesized from 0.2 (after "a") to 0.7, plays at 1.2 when "a" ends; "c" ready at 2.2, 0.5 s late
    assert [round(g, 3) for g in result.gaps_s] == [0.5]


def test_silence_at_the_edges_of_a_clause() -> None:
    audio = np.concatenate([np.zeros(100), np.full(50, 0.5), np.zeros(300)]).astype(np.float32)
    lead, tail = silence_at_edges(audio, 1000)
    assert (lead, round(tail, 3)) == (0.1, 0.3)
