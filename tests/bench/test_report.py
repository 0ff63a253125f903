"""The bench report (machine, results, plots), the bench target URL rules and the overhead bench."""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from openrealtime.bench import report
from openrealtime.bench.assistant import BargeIn, TurnTiming, assistant_plots
from openrealtime.bench.load import load_plots
from openrealtime.bench.overhead import (
    APPEND_MS,
    STAGES,
    WARMUP_APPENDS,
    frames,
    measure,
    new_session,
    run_overhead_bench,
)
from openrealtime.bench.report import LoadCurve, Plots, Series, Stages, distribution, percentile, write_results
from openrealtime.bench.speech import SENTENCES
from openrealtime.bench.target import server_target, with_default_path
from openrealtime.bench.translation import Timings, translation_plots
from openrealtime.cli import build_parser, main
from openrealtime.engines.fake import EnergyVad
from openrealtime.protocol.codec import SessionKind
from tests.conftest import quiet, tone

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MACHINE_KEYS = {"cpu", "cores", "memory_gib", "gpu", "python", "os", "openrealtime", "server"}
COMMAND = "openrealtime bench transcription --out x"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- statistics and machine -------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0  # index round(0.5 * 99) = 50 (banker's rounding)
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 95) == 3.0


def test_distribution_keys_and_empty() -> None:
    assert distribution([]) is None
    assert distribution([1.0, 2.0, 3.0], (50, 90)) == {"mean": 2.0, "p50": 2.0, "p90": 3.0, "max": 3.0, "n": 3}
    stats = distribution([1.0, 2.0, 3.0, 4.0])
    assert stats is not None
    assert stats["p50"] == 2.5  # the median, as the tables print it


def test_machine_has_every_key_and_no_gpu_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report.shutil, "which", lambda _name: None)
    info = report.machine()
    assert set(info) == MACHINE_KEYS
    assert info["gpu"] is None
    assert info["server"] is None
    assert isinstance(info["cores"], int)
    assert info["cpu"]


def test_machine_lists_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200, 143771 MiB'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert report.gpus() == [{"name": "NVIDIA H200", "memory_total": "143771 MiB"}]


def test_machine_records_the_server_settings_with_the_key_hidden() -> None:
    from openrealtime.server.settings import Settings

    info = report.machine(Settings(api_key="secret"), url="ws://127.0.0.1:1/v1/realtime")
    assert info["server"]["in_process"] is True
    assert info["server"]["settings"]["api_key"] == "***"
    assert info["server"]["settings"]["asr_model"] == "tiny.en"
    remote = report.machine(url="wss://api.openai.com/v1/realtime")["server"]
    assert remote == {"url": "wss://api.openai.com/v1/realtime", "in_process": False, "settings": None}


def test_command_line_hides_keys() -> None:
    line = report.command_line(["bench", "assistant", "--api-key", "sk-1", "--url", "wss://x/v1", "--api-key=sk-2"])
    assert line == "openrealtime bench assistant --api-key '***' --url wss://x/v1 '--api-key=***'"
    assert "sk-" not in line


# --- results and plots ------------------------------------------------------------------------------


def all_plots() -> Plots:
    return Plots(
        latencies=(
            Series("first delta", [0.5, 0.6, 0.7, float("nan")]),
            Series("1 session", [0.1, 0.2], panel="final"),
            Series("2 sessions", [0.2, 0.4], panel="final"),
            Series("never measured", []),
        ),
        stages=Stages(bars=["1", "2"], parts={"vad": [0.2, 0.3], "llm": [0.4, 0.5]}),
        load=LoadCurve(sessions=[1, 2, 4], curves={"p95": [0.3, 0.5, float("inf")]}, targets={"p95": 1.0}),
    )


def test_write_results_round_trips_and_draws_valid_pngs(tmp_path: Path) -> None:
    summary = {"machine": report.machine(), "p95_s": 0.5, "missing": float("nan"), "levels": [{"x": float("inf")}]}
    written = write_results(tmp_path, "transcription", summary, "| a | b |", plots=all_plots(), command=COMMAND)
    names = {p.name for p in written}
    assert names == {"results.json", "summary.md", "latency.png", "stages.png", "load.png"}
    for name in ("latency.png", "stages.png", "load.png"):
        width, height = png_size(tmp_path / name)
        assert width > 100
        assert height > 100
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == {
        "kind": "transcription",
        "command": COMMAND,
        **report.finite(summary),
    }
    assert results["missing"] is None
    assert results["levels"] == [{"x": None}]
    markdown = (tmp_path / "summary.md").read_text()
    assert COMMAND in markdown
    assert summary["machine"]["cpu"] in markdown
    assert "![latency](latency.png)" in markdown
    assert "| a | b |" in markdown


def test_write_results_without_plots_adds_the_machine(tmp_path: Path) -> None:
    written = write_results(tmp_path, "load", {"n": 1}, "table", command=COMMAND)
    assert [p.name for p in written] == ["results.json", "summary.md"]
    assert set(json.loads((tmp_path / "results.json").read_text())["machine"]) == MACHINE_KEYS


def test_each_bench_hands_over_drawable_plots(tmp_path: Path) -> None:
    turns = [TurnTiming("q", "q", "a", 0.4, 0.9, 0.3), TurnTiming("q", "q", "", None, None)]
    plots = assistant_plots(turns, [BargeIn("cancelled/turn_detected", 0.3, 0.1, 1200)])
    assert plots.stages is not None
    assert plots.stages.bars == ["1"]
    assert [round(v, 3) for v in (p[0] for p in plots.stages.parts.values())] == [0.5, 0.1, 0.3]
    timings = Timings(1.0, 0.5, 2.0, [0.3, 0.4], [1.0, 1.5], 10.0)
    level = {"sessions": 1, "first_delta_s": [0.5], "final_s": [0.0], "first_delta_p95_s": 0.5, "final_p95_s": 0.0}
    for kind, bench_plots in (
        ("assistant", plots),
        ("translation", translation_plots(timings)),
        ("load", load_plots([level, {**level, "sessions": 2}])),
    ):
        drawn = report.draw(tmp_path, kind, bench_plots)
        assert drawn
        for path in drawn:
            png_size(path)


# --- where a bench connects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://10.0.0.2:8000", "ws://10.0.0.2:8000/v1/realtime?intent=transcription"),
        ("ws://10.0.0.2:8000/", "ws://10.0.0.2:8000/v1/realtime?intent=transcription"),
        (
            "wss://api.openai.com/v1/realtime?intent=transcription",
            "wss://api.openai.com/v1/realtime?intent=transcription",
        ),
        ("wss://proxy.example/openai/v1/realtime", "wss://proxy.example/openai/v1/realtime"),
    ],
)
def test_a_given_url_keeps_its_path(url: str, expected: str) -> None:
    assert with_default_path(url, "/v1/realtime?intent=transcription") == expected


async def test_a_given_url_is_used_with_its_key() -> None:
    async with server_target("wss://api.openai.com/v1/realtime?model=gpt-realtime", "/x", api_key="sk") as target:
        assert target.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        assert target.api_key == "sk"
        assert not target.in_process
        assert target.machine()["server"]["url"] == target.url


def test_bench_parser_takes_overhead_and_a_key() -> None:
    args = build_parser().parse_args(["bench", "overhead", "--appends", "5"])
    assert (args.kind, args.appends) == ("overhead", 5)
    args = build_parser().parse_args(["bench", "load", "--url", "ws://h:1", "--api-key", "k"])
    assert (args.url, args.api_key) == ("ws://h:1", "k")


def test_bench_overhead_refuses_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "overhead", "--url", "ws://127.0.0.1:1"]) == 2
    assert "--url does not apply" in capsys.readouterr().err


# --- the overhead bench -----------------------------------------------------------------------------


def test_frames_loop_the_audio_and_mark_speech() -> None:
    audio = np.concatenate([tone(APPEND_MS), quiet(APPEND_MS)])
    feed = frames(audio, 5)
    assert [f.speech for f in feed] == [True, False, True, False, True]
    assert json.loads(feed[0].text)["type"] == "input_audio_buffer.append"


@pytest.mark.parametrize("kind", [SessionKind.TRANSCRIPTION, SessionKind.REALTIME])
def test_sessions_are_configured_for_server_vad_transcription(kind: SessionKind) -> None:
    session = new_session(kind, EnergyVad())
    assert session.config.audio.input.transcription is not None
    assert session.config.audio.input.turn_detection is not None
    assert session.drain() == ([], [])


def test_overhead_measures_every_session_kind_on_a_few_appends() -> None:
    audio = np.concatenate([quiet(500), tone(1500), quiet(1000)])
    appends = 30
    results = measure(frames(audio, appends + WARMUP_APPENDS), {"energy": EnergyVad()})
    assert [(r.session, r.vad) for r in results] == [("transcription", "energy"), ("realtime", "energy")]
    for result in results:
        assert result.appends == appends
        assert 0 < result.total_ms["p50"] <= result.total_ms["p95"] <= result.total_ms["max"]
        assert math.isfinite(result.total_ms["mean"])
        assert set(result.stage_mean_ms) == set(STAGES)
        assert set(result.mean_ms_by_vad_frames) <= {2, 3, 4}  # 1600 samples at 16 kHz in 512-sample frames
        assert result.speech_ms is not None
        assert result.silence_ms is not None


@pytest.mark.real
def test_overhead_bench_with_silero_on_real_speech(tmp_path: Path) -> None:
    assert run_overhead_bench(out_dir=tmp_path, appends=40, texts=SENTENCES[:2]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["session"], r["vad"]) for r in results["runs"]] == [
        ("transcription", "silero"),
        ("transcription", "energy"),
        ("realtime", "silero"),
        ("realtime", "energy"),
    ]
    assert results["vad_cost_ms"]["transcription/silero"] > 0
    png_size(tmp_path / "latency.png")
    png_size(tmp_path / "stages.png")


@pytest.mark.real
def test_a_bench_against_an_unreachable_server_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "transcription", "--url", "ws://127.0.0.1:1", "--turns", "1"]) == 1
    assert capsys.readouterr().err.startswith("bench transcription: ")


def test_memory_per_extra_session_is_the_growth_per_added_session() -> None:
    from openrealtime.bench.load import memory_per_extra_session

    levels = [{"sessions": 1, "rss_mb": 900.0}, {"sessions": 2, "rss_mb": 930.0}, {"sessions": 4, "rss_mb": 990.0}]
    assert memory_per_extra_session(levels) == 30.0
    assert memory_per_extra_session(levels[:1]) is None


@pytest.mark.real
def test_assistant_load_bench_end_to_end(tmp_path: Path) -> None:
    """The real command on a server started here: two levels, every question answered under
    semantic_vad, a report with what the end-of-turn model cost (issue 13)."""
    import json

    from openrealtime.cli import main

    out = tmp_path / "load-assistant"
    args = ["bench", "load", "--session-kind", "assistant", "--max-sessions", "2", "--turns", "1", "--out", str(out)]
    assert main([*args, "--turn-modes", "semantic_vad:medium"]) == 0
    results = json.loads((out / "results.json").read_text())
    levels = results["levels"]
    assert [lv["sessions"] for lv in levels] == [1, 2]
    for level in levels:
        assert level["turns_answered"] == level["turns_asked"] == level["sessions"]
        assert all(0 < latency < 10 for latency in level["first_audio_s"])
        assert level["end_of_turn_decisions"] >= level["sessions"]  # each turn asked the model
        assert 1 < level["end_of_turn_cpu_ms_each"] < 1000
        assert 0 < level["end_of_turn_cpu_share"] < 1
        assert level["text_signal_questions"] >= 1  # the questions' words read as finished: the LLM asked
        assert 1 < level["text_signal_cpu_ms_each"] < 2000
    assert "memory_per_extra_session_mb" in results
    summary = (out / "summary.md").read_text()
    assert "largest N within targets" in summary
    assert "CPU per decision" in summary
    assert "CPU per question" in summary
