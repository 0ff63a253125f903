"""The offline end-of-turn-token bench's pure parts: spellings, AUC and what each rule ends."""

from __future__ import annotations

import pytest

from openrealtime.bench.turn_end_token import auc, report, rule_shares, rules, spell
from openrealtime.bench.turn_verdicts import Verdict


def point(text: str, *, final: bool, smart_turn: float, complete: bool, pause_ms: int | None = 600) -> Verdict:
    return Verdict("piper@1", text, final, None if final else pause_ms, smart_turn, "words", complete)


def test_spellings() -> None:
    assert spell(" Please remind me to call. ", "heard") == "Please remind me to call."
    assert spell("Can you tell me how to get to the...", "bare") == "Can you tell me how to get to the"
    assert spell("I'd like a table, for two?", "plain") == "i'd like a table for two"


def test_auc_counts_ties_half() -> None:
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.5], [0.5]) == 0.5
    assert auc([0.1], [0.9]) == 0.0


POINTS = [
    point("a", final=False, smart_turn=0.9, complete=True),  # Smart Turn and the words end it: a cut
    point("a", final=False, smart_turn=0.1, complete=True, pause_ms=400),
    point("a", final=True, smart_turn=0.2, complete=True),  # an end Smart Turn misjudges
    point("b", final=True, smart_turn=0.9, complete=True),
]
P_END = [1e-8, 1e-3, 1e-4, 1e-2]


def test_today_veto_and_rescue() -> None:
    today = rule_shares(POINTS, P_END, lambda v, _: v.probability >= 0.5 and v.words_complete)
    assert today == {
        "pauses_ended": 1,
        "pauses": 2,
        "clips_cut": 1,
        "clips_with_pauses": 1,
        "ends_ended": 1,
        "ends": 2,
        "paused_ends_ended": 0,
        "paused_ends": 1,
    }
    by_rule = {name: rule_shares(POINTS, P_END, ended) for name, ended in rules(1e-6).items()}
    assert by_rule["veto"]["clips_cut"] == 0
    assert by_rule["veto"]["ends_ended"] == 1
    # The 400 ms pause is over before 512 ms: only the earlier rescue cuts it.
    assert by_rule["veto + rescue at 256 ms"]["pauses_ended"] == 1
    assert by_rule["veto + rescue at 512 ms"]["pauses_ended"] == 0
    assert by_rule["veto + rescue at 512 ms"]["ends_ended"] == 2


def test_report_names_every_variant() -> None:
    text = report(POINTS, {"plain/instructions": P_END, "heard/instructions": [0.5] * 4})
    assert "| plain/instructions | 0.75 |" in text
    assert "| heard/instructions | 0.50 |" in text
    assert "today: 1/2 mid-sentence pauses ended, 1/1 clips cut off, 1/2 clip ends ended" in text
    with pytest.raises(ValueError, match="zip"):  # the scores must cover every point
        report(POINTS, {"short": [0.1]})


@pytest.mark.real
@pytest.mark.usefixtures("veto_waits_800_ms")
async def test_over_the_real_models_the_llm_vetoes_a_pause_that_smart_turn_calls_complete() -> None:
    """ "Please remind me to call | ..." with a 900 ms pause, the real server in process: Smart Turn calls
    the pause complete (0.93-0.98 in every voice of the set) and the words do not trail off, so without
    the text signal the turn ended there (bench turns); the LLM's P(end) of "please remind me to call"
    (1.3e-7) vetoes it, and the word rule's doubted pause (1.25 s) outlasts the pause."""
    from openrealtime.bench import turn_clips, turns
    from openrealtime.bench.target import server_target
    from tests.conftest import TIMEOUT_S

    clip = turn_clips.make_clip("Please remind me to call | my mother tomorrow morning.", "piper", 1.15, [900])
    assert clip is not None
    [(pause_start, pause_end)] = clip.pauses_ms
    mode = turns.select_modes("semantic_vad:medium")[0]
    async with (
        server_target(None, turns.REALTIME_PATH, api_key=None) as target,
        turns.TrialSession.open(target.url, mode) as session,
    ):
        trial = await session.run(clip, answer_wait_s=TIMEOUT_S)
    assert not [at for at in trial.cut_at_ms if pause_start <= at <= pause_end], trial
    assert trial.speech_end_to_turn_end_s is not None, trial
