"""The app's start-up: engines given or loaded once, and their stage timings wired to /metrics."""

from __future__ import annotations

import gc

from starlette.testclient import TestClient

from openrealtime.engines.fake import EnergyVad, FakeTranscriber
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.app import create_app
from openrealtime.server.settings import Settings


def test_stage_timings_are_wired_at_start_up_not_by_a_connection(fake_engines: EngineSet) -> None:
    app = create_app(Settings(), engines=fake_engines)
    assert fake_engines.on_stage is None
    with TestClient(app) as client:
        assert fake_engines.on_stage is not None
        fake_engines.on_stage("asr_final", 0.25)
        assert 'stage="asr_final"' in client.get("/metrics").text
        assert client.get("/healthz").json() == {"status": "ok", "active_sessions": 0}


class ClosedEngines(EngineSet):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_loaded_engines_are_loaded_in_the_lifespan_and_closed_after() -> None:
    loaded: list[ClosedEngines] = []

    def loader(settings: Settings) -> EngineSet:
        loaded.append(ClosedEngines(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake"))
        return loaded[-1]

    app = create_app(Settings(), engine_loader=loader)
    gc.unfreeze()
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert len(loaded) == 1
        assert loaded[0].on_stage is not None
        # What was loaded is out of the cyclic collector's sight (its full collections stay short).
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assert loaded[0].closed  # the app loaded them, so it closes them


def test_engines_passed_in_are_the_callers_to_close() -> None:
    engines = ClosedEngines(vad=EnergyVad(), transcriber=FakeTranscriber(), transcriber_name="fake")
    with TestClient(create_app(Settings(), engines=engines)):
        pass
    assert not engines.closed
    engines.close()
