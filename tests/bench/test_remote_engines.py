"""``bench assistant|transcription --remote-engines``: what the command accepts, and the table it prints."""

from __future__ import annotations

import pytest

from openrealtime.bench.assistant import TurnTiming
from openrealtime.bench.remote_engines import STAGES, _cell, _stage, maybe_engine_server
from openrealtime.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "assistant", "--remote-engines", "--url", "ws://127.0.0.1:1"],
        ["bench", "load", "--remote-engines"],
    ],
)
def test_remote_engines_needs_a_server_started_here_and_a_bench_that_has_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "--remote-engines applies to assistant and transcription" in capsys.readouterr().err


async def test_without_the_flag_no_engine_server_is_started() -> None:
    async with maybe_engine_server(False) as overrides:
        assert overrides == {}


def test_stages_skip_unanswered_turns() -> None:
    turns = [
        TurnTiming("q", "q", "a", 0.4, 0.7, 0.35),
        TurnTiming("q", "q", "", None, None, None),
        TurnTiming("q", "q", "a", 0.6, 0.9, 0.5),
    ]
    [(_, stopped), _, (_, created)] = STAGES
    assert _stage(turns, stopped) == [0.4, 0.6]
    assert _cell(_stage(turns, created)) == "0.425 / 0.500 s"
    assert _cell([]) == "-"
