"""bench/turn_ab.py: issue 13's levers off (A) and on (B) in one run, clip by clip."""

from __future__ import annotations

import pytest

from openrealtime.bench import turn_clips, turns
from openrealtime.bench.turn_ab import LEVERS, ab_runs, ab_table, levers_off
from openrealtime.bench.turn_clips import Clip
from openrealtime.bench.turn_trace import ClipTrace
from openrealtime.bench.turns import Trial
from openrealtime.session.clauses import ClauseSplitter
from openrealtime.session.endpointing import END_OF_TURN
from openrealtime.session.flicker import FlickerKeeper
from tests.conftest import TIMEOUT_S

ANSWER = "The capital of France is Paris, and it is lovely."


def clauses(text: str) -> list[str]:
    splitter = ClauseSplitter()
    out: list[str] = []
    for word in text.split(" "):
        out += splitter.feed(word + " ")
    return out + splitter.flush()


def test_the_levers_go_off_while_patched_and_back_on_after() -> None:
    resumed = FlickerKeeper.speech_resumed
    asked_at = END_OF_TURN["medium"].check_pause_ms
    assert asked_at < 160
    assert clauses(ANSWER) == ["The capital of France", "is Paris,", "and it is lovely."]
    with levers_off(LEVERS):
        assert clauses(ANSWER) == ["The capital of France is Paris,", "and it is lovely."]
        assert END_OF_TURN["medium"].check_pause_ms == 160
        assert FlickerKeeper.speech_resumed is not resumed
    assert clauses(ANSWER) == ["The capital of France", "is Paris,", "and it is lovely."]
    assert END_OF_TURN["medium"].check_pause_ms == asked_at
    assert FlickerKeeper.speech_resumed is resumed
    with levers_off(["flicker"]):  # one lever alone
        assert clauses(ANSWER)[0] == "The capital of France"


def test_the_text_signal_lever_stops_the_questions() -> None:
    from openrealtime.session.eou_text import WordsEndOfTurn
    from openrealtime.session.ids import Ids

    with levers_off(["text_signal"]):
        assert WordsEndOfTurn(Ids(deterministic=True)).ask("item_1", "hello there", 0) == []
    assert len(WordsEndOfTurn(Ids(deterministic=True)).ask("item_1", "hello there", 0)) == 1


def test_the_judges_aside_lever_asks_smart_turn_later_rescues_later_and_never_holds_the_text_question() -> None:
    from openrealtime.session import eou_text, turn_end

    factor = turn_end.CLEAR_PAUSE_FACTOR
    with levers_off(["judges_aside"]):
        assert END_OF_TURN["medium"].check_pause_ms == 128
        assert turn_end.CLEAR_PAUSE_FACTOR == 0.6
        assert eou_text.hold_ms(0) == 0
    assert END_OF_TURN["medium"].check_pause_ms == 64
    assert turn_end.CLEAR_PAUSE_FACTOR == factor < 0.6
    assert eou_text.hold_ms(0) == eou_text.MAX_HOLD_MS


def test_the_ab_table_pairs_each_clip() -> None:
    def run(first_audio_s: float, first_audio_ms: int) -> tuple[Trial, ClipTrace]:
        trial = Trial("m", "t", "v", False, False, [], first_audio_s)
        milestones: dict[str, int | None] = {"first_audio": first_audio_ms, "words": None}
        milestones |= {k: None for k in ("final_asked", "answer_started", "model_asked", "model_answered")}
        milestones |= {"turn_ended": None, "first_clause_asked": None, "text_asked": None, "text_answered": None}
        return trial, ClipTrace("t", "v", 0, milestones, 1, [])

    a = [run(0.9, 900), run(0.5, 500), run(0.4, 400)]
    b = [run(0.8, 700), run(0.5, 480), run(0.4, 400)]
    table = ab_table("m", {"A": a, "B": b})
    assert "| end of speech -> first audio, wall (s) | 0.500 | 0.500 | 0.000 | -0.033 |" in table
    assert "| first answer audio sent (ms) | +500 | +480 | -20 | -73 |" in table
    assert "| answers begun (all clips) | 3 | 3 | | |" in table


@pytest.mark.real
async def test_over_the_real_models_b_speaks_a_shorter_first_clause_sooner_in_the_same_run() -> None:
    """The France question on A (levers off) and B (on), the real server in process: both answer;
    B's first clause is at most 24 characters and A's is the whole first sentence (or up to 40).
    Which is sooner is left to the bench (a loaded machine can reorder one pair)."""
    from openrealtime.bench.target import server_target

    mode = turns.select_modes("semantic_vad:medium")[0]
    question = turn_clips.make_clip("What is the capital of France?", "piper", 1.0, [])
    assert isinstance(question, Clip)
    async with server_target(None, turns.REALTIME_PATH, api_key=None) as target:
        runs = await ab_runs(target.url, mode, [question], LEVERS, wait_s=TIMEOUT_S)
    firsts = {}
    for variant, [(trial, trace)] in runs.items():
        assert trial.speech_end_to_first_audio_s is not None, trace.marks
        assert not trial.cut_off
        firsts[variant] = next(m.detail for m in trace.marks if m.what == "Synthesize")
    assert len(firsts["B"]) <= 24 < len(firsts["A"]) or firsts["A"] == firsts["B"], firsts
    assert firsts["A"].startswith(firsts["B"]), firsts
