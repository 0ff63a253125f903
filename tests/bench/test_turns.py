"""``bench turns``: building the pause set, scoring trials, and one real trial per kind of clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openrealtime.bench import turn_clips, turn_verdicts, turns
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.bench.turn_clips import Clip, find_gaps, insert_pauses, quiet_runs, re_split_commas
from openrealtime.bench.turns import Trial, cut_offs, summarize, table
from openrealtime.session.endpointing import END_OF_TURN
from tests.conftest import TIMEOUT_S

MS = WIRE_RATE_HZ // 1000


def voice(ms: int) -> np.ndarray:
    return np.full(ms * MS, 0.1, np.float32)


def gap(ms: int) -> np.ndarray:
    return np.zeros(ms * MS, np.float32)


def test_quiet_runs_skip_short_closures_and_the_edges() -> None:
    audio = np.concatenate([gap(300), voice(200), gap(40), voice(200), gap(150), voice(200), gap(500)])
    assert quiet_runs(audio) == [(740 * MS, 890 * MS)]


def test_the_commas_of_a_sentence_are_its_longest_gaps_in_order() -> None:
    # "five five, | one": a comma right before a "|" is that one pause.
    assert [p.strip()[-1] for p in re_split_commas("a table for | two people, at | seven.")] == ["|", ",", "|"]
    assert [p.strip()[-1] for p in re_split_commas("is | five five, | one.")] == ["|", "|"]
    assert [p.strip()[-1] for p in re_split_commas("one, two | three")] == [",", "|"]
    audio = np.concatenate([voice(300), gap(80), voice(300), gap(250), voice(300), gap(200), voice(300)])
    # Two commas: the two longest gaps; only the "|"'s is kept.
    assert find_gaps("one two, three | four", audio) == [(1230 * MS, 1430 * MS)]
    assert find_gaps("one | two | three | four | five", audio) is None  # too few gaps


def test_insert_pauses_stretches_each_gap_and_reports_where_the_voice_went_quiet() -> None:
    audio = np.concatenate([voice(500), gap(200), voice(500)])
    out, spans = insert_pauses(audio, [(500 * MS, 700 * MS)], [600])
    assert spans == [(500, 1100)]
    assert out.size == (500 + 30 + 600 + 500) * MS  # the gap's first 30 ms stay, then the pause
    assert not out[530 * MS : 1130 * MS].any()


def clip(paused: bool = True) -> Clip:
    return Clip("a | b", "piper@1", np.zeros(10, np.float32), ((1000, 1600),) if paused else (), 2500)


def test_a_turn_ended_before_the_last_word_is_a_cut_off() -> None:
    assert cut_offs([1200, 2600], clip()) == [1200]
    assert cut_offs([2490], clip()) == []  # within Silero's offset of the last word's end


def test_summary_rates_cut_offs_over_the_paused_clips_only() -> None:
    trials = [
        Trial("m", "a", "v", True, True, [1200], 0.4, 0.2),
        Trial("m", "b", "v", True, False, [], 0.3, 0.2),
        Trial("m", "c", "v", False, False, [], 0.2, 0.1),
        Trial("m", "d", "v", False, False, [], None, None),
    ]
    [m] = summarize(trials).values()
    assert m["paused_clips"] == 2
    assert m["false_cut_offs"] == 1
    assert m["false_cut_off_rate"] == 0.5
    assert m["answered"] == 3
    assert m["speech_end_to_first_audio_s"]["p50"] == pytest.approx(0.3)
    assert "| m | 1 / 2 (50%) | 0.300" in table(summarize(trials))


def test_verdict_rates_compare_the_model_alone_with_the_model_and_the_words() -> None:
    points = [
        turn_verdicts.Verdict("v", "a", False, 400, 0.9, "I was moved to", False),  # the words veto the model
        turn_verdicts.Verdict("v", "a", False, 600, 0.9, "Remind me to call.", True),
        turn_verdicts.Verdict("v", "a", False, 900, 0.1, "I wonder if", False),
        turn_verdicts.Verdict("v", "a", True, None, 0.6, "It is done.", True),
    ]
    rates = turn_verdicts.verdict_rates(points)
    assert rates["medium"]["pauses_ended_model_alone"] == pytest.approx(2 / 3)
    assert rates["medium"]["pauses_ended_model_and_words"] == pytest.approx(1 / 3)
    assert rates["medium"]["ends_ended_model_and_words"] == 1.0
    assert rates["low"]["ends_ended_model_alone"] == 0.0  # 0.6 is under low's 0.7
    assert "| medium (0.5) | 67% | 33% | 100% | 100% |" in turn_verdicts.verdict_table(rates)


def test_the_pause_sweep_says_what_asking_sooner_or_later_would_end() -> None:
    points = [
        turn_verdicts.Verdict("v", "a", False, 400, 0.9, "Remind me to call.", True, {64: 0.3, 160: 0.9}),
        turn_verdicts.Verdict("v", "a", False, 600, 0.9, "I was moved to", False, {64: 0.9, 160: 0.9}),  # words veto
        turn_verdicts.Verdict("v", "a", True, None, 0.8, "It is done.", True, {64: 0.6, 160: 0.8}),
        # A 100 ms pause the model would end at 160 ms: the speaker is back before it is asked.
        turn_verdicts.Verdict("v", "b", False, 100, 0.9, "Call me.", True, {64: 0.1, 160: 0.9}),
    ]
    rows = {(r["pause_ms"], r["threshold"]): r for r in turn_verdicts.pause_sweep(points)}
    assert rows[64, 0.5]["pauses_ended"] == 0.0
    assert rows[64, 0.5]["ends_ended"] == 1.0
    assert rows[64, 0.7]["ends_ended"] == 0.0  # 0.6 heard after 64 ms is under low's 0.7
    assert rows[160, 0.5]["pauses_ended"] == pytest.approx(1 / 3)
    rates = turn_verdicts.verdict_rates(points)
    assert "| 160 ms | 0.5 | 33% | 100% |" in turn_verdicts.verdict_table(rates)


def test_every_mode_is_a_valid_turn_detection() -> None:
    from openrealtime.protocol.config import AudioInput

    names = [mode.name for mode in turns.MODES]
    assert len(set(names)) == len(names)
    for mode in turns.MODES:
        AudioInput.model_validate({"turn_detection": mode.turn_detection})


@pytest.mark.real
@pytest.mark.usefixtures("veto_waits_800_ms")
async def test_semantic_vad_answers_a_question_quickly_and_waits_through_a_pause() -> None:
    """Over the real server: a finished question ends its turn well before the eagerness's cap (the
    model and the words decided, not the silence) and is answered; a sentence with a 600 ms pause
    after "could" is not cut off. Times are the machine's (no wall-clock bound but the cap: a loaded
    machine is slower, ``bench turns`` measures how fast). "I was wondering if you could" reads as
    finished, so the LLM's veto keeps that pause (given the time to come: ``veto_waits_800_ms``)."""
    from openrealtime.bench.target import server_target

    mode = next(m for m in turns.MODES if m.turn_detection.get("eagerness") == "medium")
    question = turn_clips.make_clip("What is the capital of France?", "piper", 1.0, [])
    paused = turn_clips.make_clip(
        "I was wondering if you could | help me with my | homework.", "piper", 1.0, [600, 600]
    )
    assert question is not None
    assert paused is not None
    async with server_target(None, turns.REALTIME_PATH, api_key=None) as target:
        asked = await turns.run_trial(target.url, mode, question, api_key=target.api_key, answer_wait_s=TIMEOUT_S)
        held = await turns.run_trial(target.url, mode, paused, api_key=target.api_key, answer_wait_s=TIMEOUT_S)
    assert asked.speech_end_to_turn_end_s is not None
    assert asked.speech_end_to_turn_end_s < END_OF_TURN["medium"].max_wait_ms / 1000
    assert asked.speech_end_to_first_audio_s is not None
    assert not held.cut_off


def test_turn_modes_are_chosen_by_key_in_the_bench_order() -> None:
    chosen = turns.select_modes("semantic_vad:medium, server_vad:500")
    assert [m.key for m in chosen] == ["server_vad:500", "semantic_vad:medium"]
    assert turns.select_modes("semantic_vad:auto") == turns.select_modes("semantic_vad:medium")
    assert turns.select_modes(None) == turns.MODES
    with pytest.raises(ValueError, match="server_vad:300"):
        turns.select_modes("server_vad:300")


async def test_the_trace_needs_the_server_in_process() -> None:
    assert await turns.run_turns_bench(url="ws://127.0.0.1:9/v1/realtime", out_dir=None, trace=True) == 2


def test_a_clip_trace_places_each_milestone_after_the_last_word_and_counts_the_answers_begun() -> None:
    from openrealtime.bench.turn_trace import Mark, clip_trace, timeline, trace_table

    end = 5_000  # the last word, in the session's input
    marks = [
        Mark(end - 900, "Generate", "job_a"),  # an answer begun in a mid-sentence pause: not this end
        Mark(end - 20, "final_asked", "job_1"),  # Silero's pause a frame before the measured end
        Mark(end + 40, "CancelJob", "job_1"),
        Mark(end + 80, "final_asked", "job_2"),
        Mark(end + 140, "final_ready", "what is the capital of France?"),
        Mark(end + 140, "TurnMayEnd"),
        Mark(end + 140, "Generate", "job_3"),
        Mark(end + 150, "ScoreTurnWords", "what is the capital of France?"),
        Mark(end + 180, "PredictTurnEnd", "job_4"),
        Mark(end + 220, "TextScored", "7.3e-02"),
        Mark(end + 240, "TurnEndPredicted", "0.98"),
        Mark(end + 240, "speech_stopped", "5240"),
        Mark(end + 360, "Synthesize", "The capital of France is Paris."),
        Mark(end + 480, "first_audio", "resp_1"),
        Mark(end + 600, "Generate", "job_5"),  # after the first audio: not counted
    ]
    clip = Clip("What is the capital of France?", "piper@1", np.zeros(1, np.float32), (), 1_000)
    trace = clip_trace(clip, end, marks)
    assert trace.milestones == {
        "final_asked": -20,
        "words": 140,
        "answer_started": 140,
        "model_asked": 180,
        "model_answered": 240,
        "text_asked": 150,
        "text_answered": 220,
        "turn_ended": 240,
        "first_clause_asked": 360,
        "first_audio": 480,
    }
    assert trace.answers_begun == 1
    table = trace_table("semantic_vad medium", [trace])
    assert "| **median** | -20 | +140 | +140 | +180 | +240 | +150 | +220 | +240 | +360 | +480 | 1 |" in table
    assert "   +140 ms  TurnMayEnd" in timeline(trace)


@pytest.mark.real
async def test_semantic_vads_answer_is_begun_on_the_pauses_words_before_the_turn_ends() -> None:
    """Over the real models, watched from inside (bench/turn_trace.py): under semantic_vad the answer
    that speaks was begun on the pause's speculative words, at the turn's end at the latest, and is
    not begun again at the commit. Positions are the input's, so load cannot reorder them."""
    from openrealtime.bench.target import server_target
    from openrealtime.bench.turn_trace import SessionWatch, clip_trace

    mode = turns.select_modes("semantic_vad:medium")[0]
    question = turn_clips.make_clip("What is the capital of France?", "piper", 1.0, [])
    assert question is not None
    async with server_target(None, turns.REALTIME_PATH, api_key=None) as target:
        with SessionWatch() as watch:
            async with turns.TrialSession.open(target.url, mode, api_key=target.api_key) as session:
                end_ms = session.sent_ms + turns.LEAD_MS + question.speech_end_ms
                trial = await session.run(question, answer_wait_s=TIMEOUT_S)
    trace = clip_trace(question, end_ms, watch.marks)
    m = trace.milestones
    assert trial.speech_end_to_first_audio_s is not None
    assert None not in (m["words"], m["answer_started"], m["turn_ended"], m["first_audio"]), trace.marks
    assert m["words"] <= m["answer_started"] <= m["turn_ended"] <= m["first_audio"], trace.marks


def test_cached_speech_is_synthesized_once_and_then_read_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Piper is random: a bench comparing settings reads the same speech each run."""
    drawn: list[str] = []

    def random_voice(text: str, engine: str, speed: float) -> np.ndarray:
        drawn.append(text)
        return np.random.default_rng().uniform(-0.5, 0.5, 2400).astype(np.float32)

    monkeypatch.setattr(turn_clips, "synthesize", random_voice)
    monkeypatch.setattr(turn_clips, "cache_dir", lambda: tmp_path)
    first = turn_clips.cached_speech("Hello there.", "piper", 1.0)
    again = turn_clips.cached_speech("Hello there.", "piper", 1.0)
    other = turn_clips.cached_speech("Hello there.", "piper", 1.2)
    assert drawn == ["Hello there.", "Hello there."]  # once per text, engine and speed
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.float32
