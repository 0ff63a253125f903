"""``bench calls`` as its command runs it: ``openrealtime serve`` started as a child with the real models,
one WebRTC call asking a spoken question, the server's own CPU read from its process, the idle cost
of both transports, and the results written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrealtime.bench import calls

pytestmark = pytest.mark.real


async def test_one_call_against_a_server_in_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calls, "IDLE_S", 2.0)
    assert await calls.run_calls_bench(url=None, out_dir=tmp_path, max_calls=1, turns=1) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    [level] = results["levels"]
    assert level["turns_answered"] == 1, level["turn_details"]
    [turn] = level["turn_details"]
    assert "capital" in turn["heard"].lower()
    assert turn["answer"].strip()
    assert 0 < turn["first_audio_s"] < 30
    assert 0 < level["server_cores_per_call"] < 4
    idle = results["idle_server_cores_per_session"]
    assert idle["webrtc"] > 0
    assert idle["websocket"] >= 0
