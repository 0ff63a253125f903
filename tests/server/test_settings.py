"""Settings: defaults sized to the machine, environment variables, flags."""

from __future__ import annotations

import pytest

from openrealtime.runtime.engines import EngineSet
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


def test_the_echo_canceller_is_ours_unless_named_and_a_wrong_name_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings.load().echo_canceller == "linear"
    monkeypatch.setenv("OPENREALTIME_ECHO_CANCELLER", "aec3")
    assert Settings.load().echo_canceller == "aec3"
    with pytest.raises(ValueError, match="echo_canceller"):
        Settings.load(echo_canceller="speex")


def test_a_session_gets_the_canceller_named_only_with_echo_cancellation_on(fake_engines: EngineSet) -> None:
    from openrealtime.server.sessions import Opened, open_realtime
    from openrealtime.session.linear_echo import LinearEchoCanceller
    from openrealtime.session.realtime import RealtimeSession

    for cancellation, expected in ((False, None), (True, "linear")):
        opened = open_realtime({"model": "gpt-realtime"}, {}, Settings(echo_cancellation=cancellation), fake_engines)
        assert isinstance(opened, Opened)
        assert isinstance(opened.session, RealtimeSession)
        assert opened.session.rt.echo_canceller == expected
        canceller = opened.session._echo
        assert (canceller is None) if expected is None else isinstance(canceller._aec, LinearEchoCanceller)
