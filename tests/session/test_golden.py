"""Golden event transcripts: scripted sessions whose whole output is recorded in ``tests/golden``.

Run with ``OPENREALTIME_UPDATE_GOLDEN=1`` to rewrite them after a deliberate change; review the diff.
Audio payloads are replaced by their decoded length so the files stay small and readable.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import quiet, tone
from tests.session import test_realtime, test_transcription

GOLDEN = Path(__file__).parent.parent / "golden"


def scrub(event: dict[str, Any]) -> dict[str, Any]:
    if event["type"] in ("response.output_audio.delta",):
        return {**event, "delta": f"<{len(base64.b64decode(event['delta']))} bytes>"}
    return event


def transcription_vad() -> list[dict[str, Any]]:
    _, driver = test_transcription.make()
    driver.pump()
    test_transcription.configure(driver, "server_vad", silence_duration_ms=300)
    driver.append(quiet(400))
    driver.append(tone(2200))
    driver.append(quiet(700))
    driver.append(tone(1200))
    driver.append(quiet(700))
    return driver.events


def transcription_manual() -> list[dict[str, Any]]:
    _, driver = test_transcription.make()
    driver.pump()
    test_transcription.configure(driver, None)
    driver.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
    driver.append(tone(1200))
    driver.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    driver.send({"type": "bogus", "event_id": "b1"})
    return driver.events


def realtime_text_turn() -> list[dict[str, Any]]:
    _, driver = test_realtime.make()
    test_realtime.say(driver, "Hello?")
    driver.send({"type": "response.create"})
    return driver.events


def realtime_barge_in() -> list[dict[str, Any]]:
    _, driver = test_realtime.make(hold_tts=True)
    test_realtime.say(driver, "Hello?")
    driver.send({"type": "response.create"})
    driver.run_tts(driver.held_tts[0], chunks=2)
    driver.pump()
    driver.append(tone(300))
    driver.append(quiet(600))
    return driver.events


SCENARIOS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "transcription_vad": transcription_vad,
    "transcription_manual": transcription_manual,
    "realtime_text_turn": realtime_text_turn,
    "realtime_barge_in": realtime_barge_in,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str) -> None:
    events = [scrub(e) for e in SCENARIOS[name]()]
    path = GOLDEN / f"{name}.jsonl"
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
    if os.environ.get("OPENREALTIME_UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"{path.name} changed; rerun with OPENREALTIME_UPDATE_GOLDEN=1 and review"
