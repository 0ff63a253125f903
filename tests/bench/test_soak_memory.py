"""``bench soak --memory`` over fake engines: two small sessions in turn, each freed when it closes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from openrealtime.bench.assistant import REALTIME_PATH
from openrealtime.bench.memory import measure_sessions, summarize, table
from openrealtime.bench.target import Target
from openrealtime.cli import build_parser, main
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import tone


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("Hi."),
        synthesizers={"en": ToneSynthesizer()},
    )
    yield engines
    engines.close()


async def test_small_sessions_in_turn_are_filled_closed_and_freed(engines: EngineSet) -> None:
    settings = Settings(port=0)
    async with running_server(settings, engines=engines) as base:
        target = Target(f"{base}{REALTIME_PATH}", None, settings)
        speech = np.concatenate([tone(800), np.zeros(4800, np.float32)])
        results = await measure_sessions(target, 2, speech=speech, buffer_s=20, items_chars=2 * 1024 * 1024)
    assert [r.index for r in results] == [1, 2]
    for r in results:
        assert r.answered
        assert r.items_added == 10  # 2 MiB of 256 KiB items, and two more: under the server's 32 MiB
        assert r.items_refused == 0
        assert r.buffered_audio_s == 20
        assert r.live_sessions_closed == 0  # freed by reference counting, the cyclic GC off
        assert r.live_sessions_collected == r.live_connections_collected == 0
        assert r.holders == []
        assert r.rss_open_mb > 0
    summary = summarize(results)
    assert summary["sessions"] == 2
    assert summary["live_sessions_after_close_max"] == 0
    assert summary["caps"]["outbox_bytes"] == 16 * 1024 * 1024
    text = table(summary)
    assert "| 2 |" in text
    assert "after gc.collect()" in text


def test_the_command_line_takes_memory_and_sessions_and_refuses_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["bench", "soak", "--memory", "--sessions", "3"])
    assert (args.kind, args.memory, args.sessions) == ("soak", True, 3)
    assert build_parser().parse_args(["bench", "soak"]).sessions == 7
    assert main(["bench", "soak", "--memory", "--url", "ws://127.0.0.1:9"]) == 2
    assert "--url does not apply" in capsys.readouterr().err
