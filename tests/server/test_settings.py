"""Settings: defaults sized to the machine, environment variables, flags."""

from __future__ import annotations

import pytest

from openrealtime.server.settings import MAX_DEFAULT_THREADS, Settings, machine_cores


def test_thread_defaults_follow_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(2)))
    assert machine_cores() == 2
    settings = Settings.load()
    assert (settings.threads, settings.asr_workers) == (2, 2)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))
    assert Settings.load().asr_workers == MAX_DEFAULT_THREADS


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENREALTIME_ASR_WORKERS", "3")
    monkeypatch.setenv("OPENREALTIME_LLM_PARALLEL", "6")
    settings = Settings.load(asr_workers=5)
    assert settings.asr_workers == 5
    assert settings.llm_parallel == 6
