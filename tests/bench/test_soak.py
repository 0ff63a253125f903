"""``bench soak`` over fake engines for a few seconds: a whole run and its report, and the report's
arithmetic on made-up turns (the hour-long run over the real models is in docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openrealtime.audio.types import Samples
from openrealtime.bench.soak import (
    NAME_STATEMENT,
    RECALL_QUESTION,
    SoakRun,
    SoakTurn,
    blocks,
    run_soak_bench,
    summarize,
    table,
)
from openrealtime.cli import build_parser
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import tone

UNLIMITED = {f"max_{kind}_sessions": 0 for kind in ("transcription", "realtime", "translation")}


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(("peter",)),
        transcriber_name="fake",
        chat=FakeChatModel("Hi."),  # 0.18 s of tone: turns of about 2 s
        synthesizers={"en": ToneSynthesizer()},
    )
    yield engines
    engines.close()


def speech(text: str) -> Samples:
    """A tone as long as the text is read aloud, at 60 ms a character, at most 0.6 s."""
    return tone(min(600, 60 * len(text)))


async def test_a_short_soak_answers_every_turn_and_reports_it(engines: EngineSet, tmp_path: Path) -> None:
    async with running_server(Settings(port=0, **UNLIMITED), engines=engines) as base:
        code = await run_soak_bench(
            url=f"{base}/v1/realtime?model=gpt-realtime", out_dir=tmp_path, minutes=0.1, speech=speech, block_s=3.0
        )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["kind"] == "soak"
    spoken = results["turns_spoken"]
    assert spoken >= 3
    assert results["turns_answered"] == spoken
    assert results["turns_with_error"] == 0
    assert results["errors_by_code"] == {}
    assert results["turns_with_several_user_items"] == 0
    assert all(t["user_items"] == 1 for t in results["turn_details"])
    details = results["turn_details"]
    assert details[0]["question"] == NAME_STATEMENT
    assert [t["question"] for t in details].count(RECALL_QUESTION) == 1
    assert all(t["answer"] == "Hi." and t["answer_audio_s"] > 0.1 for t in details)
    assert all(t["at_s"] < 6.0 for t in details)  # no turn starts after --minutes
    assert results["recall"]["answer"] == "Hi."
    assert results["recall"]["mentions_name"] is False
    assert sum(b["spoken"] for b in results["blocks"]) == spoken
    assert len(results["blocks"]) >= 2
    assert results["reconnects"] == 0
    assert results["sessions"] == 1
    assert results["rss_start_mb"] is None  # a given URL: not this process's server
    assert "turns answered / spoken" in (tmp_path / "summary.md").read_text()


def turn(index: int, at_s: float, latency: float | None, errors: list[str] | None = None) -> SoakTurn:
    return SoakTurn(index, at_s, "q", "q", "a" if latency else "", latency, 1.0, errors or [], rss_mb=100.0 + index)


def test_blocks_group_turns_by_when_they_were_asked_and_show_drift() -> None:
    turns = [turn(1, 10, 0.2), turn(2, 300, 0.4), turn(3, 610, 1.0), turn(4, 700, None, ["context_length_exceeded"])]
    first, second = blocks(turns)
    assert (first["from_min"], first["to_min"], first["spoken"], first["answered"]) == (0, 10, 2, 2)
    assert first["stopped_to_first_audio_s"]["p50"] == pytest.approx(0.3)
    assert first["stopped_to_first_audio_s"]["max"] == 0.4
    assert (second["spoken"], second["answered"], second["with_error"]) == (2, 1, 1)
    assert second["rss_mb"] == 104.0


def test_the_summary_counts_errors_by_code_and_reports_the_recall_without_judging_it() -> None:
    recall = SoakTurn(3, 650, RECALL_QUESTION, "What is my name?", "Your name is Peter.", 0.3, 1.0, [])
    turns = [turn(1, 0, 0.2), turn(2, 5, None, ["context_length_exceeded", "x"]), recall]
    summary = summarize(SoakRun(700, turns, reconnects=1, sessions=2, recall=recall), lifetime_s=3600)
    assert (summary["turns_spoken"], summary["turns_answered"], summary["turns_with_error"]) == (3, 2, 1)
    assert summary["errors_by_code"] == {"context_length_exceeded": 1, "x": 1}
    assert summary["recall"]["mentions_name"] is True
    assert summary["rss_start_mb"] == 101.0
    text = table(summary)
    assert "| turns answered / spoken (goal: every one) | 2 / 3 |" in text
    assert "context_length_exceeded x1" in text
    assert "server session lifetime 3600 s" in text
    assert "| 10–20 min | 1 | 1 | 0 |" in text


def test_the_command_line_takes_soak_and_its_minutes() -> None:
    args = build_parser().parse_args(["bench", "soak", "--minutes", "2.5", "--out", "x"])
    assert (args.kind, args.minutes, args.out) == ("soak", 2.5, "x")
    assert build_parser().parse_args(["bench", "soak"]).minutes == 60.0


def test_speech_is_float32() -> None:
    assert speech("abc").dtype == np.float32
