"""``/healthz`` and ``/readyz`` as readiness answers (issue 10: it said "ok" through every overload;
issue 15: the load and the drain): 503 with a reason while the door drains, every session kind is full
or the event loop lags, 200 again once it can take work; ``/livez`` always 200."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.testclient import TestClient

from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.runtime.scheduler import WorkerStats
from openrealtime.server.admission import CAPACITY_CODE, DRAINING_CODE, UNLIMITED, Admission
from openrealtime.server.app import create_app
from openrealtime.server.embedded import running_server
from openrealtime.server.readiness import (
    AT_CAPACITY,
    DRAINING,
    LAG_UNREADY_S,
    LOADING,
    LOOP_LAGGING,
    LoopLag,
    load_report,
    readiness,
)
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

KEY = "sk-readiness-test-key"


def test_the_verdict_names_the_first_reason() -> None:
    assert readiness(loaded=True, all_full=False, lagging=False).ready
    assert readiness(loaded=False, all_full=True, lagging=True).reason == LOADING
    assert readiness(loaded=True, all_full=True, lagging=True).reason == AT_CAPACITY
    assert readiness(loaded=True, all_full=False, lagging=True).reason == LOOP_LAGGING
    assert readiness(loaded=False, all_full=True, lagging=True, draining=True).reason == LOADING
    assert readiness(loaded=True, all_full=True, lagging=True, draining=True).reason == DRAINING


def test_a_draining_door_admits_nothing_and_says_why() -> None:
    admission = Admission({SessionKind.REALTIME: 1, SessionKind.TRANSCRIPTION: UNLIMITED})
    assert admission.admit(SessionKind.REALTIME)
    assert not admission.admit(SessionKind.REALTIME)
    assert admission.refusal(SessionKind.REALTIME).code == CAPACITY_CODE
    admission.draining = True
    assert not admission.admit(SessionKind.TRANSCRIPTION)  # unlimited, but the door is on its way out
    refused = admission.refusal(SessionKind.TRANSCRIPTION)
    assert (refused.code, refused.reason) == (DRAINING_CODE, "draining")
    assert "shutting down" in refused.message
    assert admission.total() == 1


def test_the_load_report_names_each_kind_against_its_limit() -> None:
    admission = Admission({SessionKind.REALTIME: 2, SessionKind.TRANSCRIPTION: UNLIMITED})
    admission.admit(SessionKind.REALTIME)
    admission.admit(SessionKind.REALTIME)
    admission.admit(SessionKind.TRANSCRIPTION)
    report = load_report(
        admission, calls=1, workers={"asr": WorkerStats(queued=3, busy_s=1.0, top_session_share=0.5)}, lag_s=0.01234
    )
    assert report == {
        "sessions": {
            "realtime": {"open": 2, "limit": 2, "full": True},
            "transcription": {"open": 1, "limit": None, "full": False},
        },
        "calls": 1,
        "engines": {"asr": {"queued": 3}},
        "event_loop_lag_ms": 12.3,
    }


def test_loop_lag_turns_unready_above_the_threshold_and_ready_only_well_below() -> None:
    lag = LoopLag(unready_s=0.25, ready_s=0.1)
    assert not lag.is_lagging()
    lag.observe(0.2)
    assert not lag.is_lagging()  # under the threshold
    lag.observe(0.3)
    assert lag.is_lagging()
    lag.observe(0.2)
    assert lag.is_lagging()  # between the two: stays unready (no flapping)
    lag.observe(0.05)
    assert not lag.is_lagging()
    assert lag.max_lag_s == pytest.approx(0.3)
    lag.observe(-0.001)  # a timer never runs early, but a clock may say so
    assert lag.lag_s == 0.0


def test_all_full_only_when_every_kind_is_limited_and_at_its_limit() -> None:
    admission = Admission({SessionKind.REALTIME: 1, SessionKind.TRANSCRIPTION: 1})
    assert not admission.all_full()
    assert admission.admit(SessionKind.REALTIME)
    assert not admission.all_full()
    assert admission.admit(SessionKind.TRANSCRIPTION)
    assert admission.all_full()
    admission.release(SessionKind.REALTIME)
    assert not admission.all_full()
    unlimited = Admission({SessionKind.REALTIME: 1, SessionKind.TRANSCRIPTION: UNLIMITED})
    assert unlimited.admit(SessionKind.REALTIME)
    assert not unlimited.all_full()  # an unlimited kind always has room


def test_healthz_is_503_at_capacity_and_200_once_a_place_frees(fake_engines: EngineSet) -> None:
    settings = Settings(api_key=KEY, max_realtime_sessions=1, max_transcription_sessions=1, max_translation_sessions=1)
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(settings, engines=fake_engines)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        with (
            client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=auth) as realtime,
            client.websocket_connect("/v1/realtime?intent=transcription", headers=auth) as transcription,
        ):
            assert realtime.receive_json()["type"] == "session.created"
            assert transcription.receive_json()["type"] == "session.created"
            assert client.get("/healthz").status_code == 200  # translation still has a place
            with client.websocket_connect("/v1/realtime/translations?model=gpt-realtime-translate", headers=auth) as tr:
                assert tr.receive_json()["type"] == "session.created"
                unready = client.get("/healthz")
                assert unready.status_code == 503
                assert unready.json() == {"status": "unready", "reason": AT_CAPACITY}  # no counts without the key
                with_key = client.get("/healthz", headers=auth)
                assert with_key.json() == {"status": "unready", "reason": AT_CAPACITY, "active_sessions": 3}
                metrics = client.get("/metrics", headers=auth).text
                assert "openrealtime_ready 0" in metrics
                assert 'openrealtime_unready_answers_total{reason="at_capacity"} 2' in metrics
        # Starlette's test client closes its sessions asynchronously: wait for the places to free.
        deadline = time.monotonic() + TIMEOUT_S
        while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/healthz").json() == {"status": "ok"}
        assert "openrealtime_ready 1" in client.get("/metrics", headers=auth).text


def test_a_session_cancelled_while_it_closes_frees_its_place_and_its_hand_off(
    fake_engines: EngineSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's test client cancels the app the moment its socket closes (a server shutting down
    does too), and an anyio cancellation is raised again at every await: a session still closing
    then must still free its place and its resume hand-off (CI once saw /healthz at capacity for
    good after three test sessions closed)."""
    from openrealtime.runtime.connection import Connection

    run = Connection.run

    async def slow_to_close(self: Connection) -> None:
        await run(self)
        await asyncio.sleep(5)  # still closing when the client's cancel comes

    monkeypatch.setattr(Connection, "run", slow_to_close)
    settings = Settings(api_key=KEY, max_realtime_sessions=1, max_transcription_sessions=1, max_translation_sessions=1)
    auth = {"Authorization": f"Bearer {KEY}"}
    app = create_app(settings, engines=fake_engines)
    with TestClient(app) as client:
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=auth) as realtime:
            assert realtime.receive_json()["type"] == "session.created"
        assert client.get("/healthz").json() == {"status": "ok"}
        assert 'openrealtime_active_sessions{kind="realtime"} 0' in client.get("/metrics", headers=auth).text
        assert len(app.state.drain) == 0, "a drain waits for no connection that is gone"
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=auth) as again:
            assert again.receive_json()["type"] == "session.created", "the place was freed"


async def test_healthz_is_503_while_the_event_loop_lags_and_ready_again_after(fake_engines: EngineSet) -> None:
    async with running_server(Settings(port=0), engines=fake_engines) as url, httpx.AsyncClient() as http:
        base = url.replace("ws://", "http://")
        assert (await http.get(f"{base}/healthz")).status_code == 200
        time.sleep(LAG_UNREADY_S + 0.2)  # noqa: ASYNC251 - blocking the loop is the point: an overload
        lagging = await http.get(f"{base}/healthz")
        assert lagging.status_code == 503
        assert lagging.json() == {"status": "unready", "reason": LOOP_LAGGING, "active_sessions": 0}
        metrics = (await http.get(f"{base}/metrics")).text
        assert "openrealtime_event_loop_lag_seconds" in metrics
        async with asyncio.timeout(TIMEOUT_S):  # the next timers run on time: ready again
            while (await http.get(f"{base}/healthz")).status_code != 200:  # noqa: ASYNC110 - polling a server
                await asyncio.sleep(0.05)
        lag = next(
            line
            for line in (await http.get(f"{base}/metrics")).text.splitlines()
            if line.startswith("openrealtime_event_loop_lag_seconds ")
        )
        assert float(lag.split()[1]) < LAG_UNREADY_S
        assert "openrealtime_ready 1" in (await http.get(f"{base}/metrics")).text


def test_readyz_reports_load_per_kind_to_the_key_and_readiness_to_anyone(fake_engines: EngineSet) -> None:
    settings = Settings(api_key=KEY, max_realtime_sessions=1, max_transcription_sessions=2, max_translation_sessions=0)
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(settings, engines=fake_engines)) as client:
        assert client.get("/readyz").json() == {"status": "ok", "reason": None}  # no load without the key
        assert client.get("/livez").json() == {"status": "ok"}
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=auth) as realtime:
            assert realtime.receive_json()["type"] == "session.created"
            ready = client.get("/readyz", headers=auth)
            assert ready.status_code == 200
            body = ready.json()
            assert body["sessions"] == {
                "transcription": {"open": 0, "limit": 2, "full": False},
                "realtime": {"open": 1, "limit": 1, "full": True},
                "translation": {"open": 0, "limit": None, "full": False},
            }
            assert body["calls"] == 0
            assert set(body["engines"]) >= {"asr"}
            assert isinstance(body["event_loop_lag_ms"], float)
            # A balancer that routes one kind asks about that kind: realtime is full here.
            full = client.get("/readyz?kind=realtime")
            assert (full.status_code, full.json()) == (503, {"status": "unready", "reason": AT_CAPACITY})
            assert client.get("/readyz?kind=transcription").status_code == 200
            assert client.get("/healthz").json() == {"status": "ok"}  # unchanged: another kind has room
            bad = client.get("/readyz?kind=music")
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "invalid_value"
            assert client.get("/readyz", headers={"Authorization": "Bearer sk-wrong"}).json() == {
                "status": "ok",
                "reason": None,
            }
