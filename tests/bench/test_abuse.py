"""``bench abuse`` end to end over the real models: a tiny run, its report's shape, the victim answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrealtime.bench.abuse import HEALTH_QUANTILE, IDLE, run_abuse_bench
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings

pytestmark = pytest.mark.real

UNLIMITED = {f"max_{kind}_sessions": 0 for kind in ("transcription", "realtime", "translation")}


async def test_a_tiny_abuse_run_reports_every_scenario_and_the_victim_is_answered(
    real_engines: EngineSet, tmp_path: Path
) -> None:
    async with running_server(Settings(port=0, **UNLIMITED), engines=real_engines) as base:
        code = await run_abuse_bench(url=base, out_dir=tmp_path, turns=1, responses=5, flood_sessions=1, items=50)
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["kind"] == "abuse"
    assert "bench abuse" in (tmp_path / "summary.md").read_text()
    scenarios = results["scenarios"]
    assert next(s["scenario"] for s in scenarios) == IDLE
    assert len(scenarios) == 4
    for scenario in scenarios:
        assert scenario["victim_answered"] == scenario["victim_turns"] == 1, scenario["scenario"]
        assert scenario["healthz_s"][f"p{HEALTH_QUANTILE}"] > 0
        assert scenario["victim_p50_vs_idle"] is not None
    idle, responses, audio, items = scenarios
    assert idle["flood_sessions"] == 0
    assert idle["flood_errors"] == {}
    assert responses["flood_errors"].get("too_many_active_responses", 0) >= 5 - 3  # beyond 3 in flight
    assert audio["flood_sent"] > 0
    assert items["flood_bursts"]
    assert all(b["acknowledged"] == b["items"] == 50 for b in items["flood_bursts"])
