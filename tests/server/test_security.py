"""The server's front door (issue 10, risks to close): origins, admission, slow clients, failed keys,
and what the logs and metrics reveal. Fast: fake engines, a real uvicorn on 127.0.0.1 where it counts."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import websockets
from openai import AsyncOpenAI
from starlette.testclient import TestClient, WebSocketDenialResponse

from openrealtime.cli import build_parser
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.admission import UNLIMITED, Admission
from openrealtime.server.app import create_app
from openrealtime.server.embedded import running_server
from openrealtime.server.origins import OriginPolicy
from openrealtime.server.settings import Settings

EVIL = "http://evil.example"

# --- origins ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "origin", "host", "allowed"),
    [
        (None, None, "127.0.0.1:8000", True),  # not a browser
        (None, "http://127.0.0.1:8000", "127.0.0.1:8000", True),  # same origin
        (None, "HTTP://LOCALHOST", "localhost:80", True),  # case and default port
        (None, "https://voice.example", "voice.example", True),
        (None, "https://voice.example:443/", "voice.example", True),
        (None, "http://127.0.0.1:8001", "127.0.0.1:8000", False),  # another port is another origin
        (None, EVIL, "127.0.0.1:8000", False),
        (None, EVIL, None, False),
        (None, "null", "127.0.0.1:8000", False),
        (None, "not a url", "127.0.0.1:8000", False),
        ("http://localhost:3000, https://app.example", "http://localhost:3000", "127.0.0.1:8000", True),
        ("https://app.example:443", "https://app.example", "127.0.0.1:8000", True),
        ("https://app.example", "http://app.example", "127.0.0.1:8000", False),  # scheme counts
        ("null", "null", "127.0.0.1:8000", True),
        ("*", EVIL, "127.0.0.1:8000", True),
        ("*", "null", "127.0.0.1:8000", True),
    ],
)
def test_origin_policy(setting: str | None, origin: str | None, host: str | None, allowed: bool) -> None:
    assert OriginPolicy.parse(setting).allows(origin, host) is allowed


def test_cross_origin_http_requests_get_403(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:
        refused = client.get("/healthz", headers={"Origin": EVIL})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "origin_not_allowed"
        assert client.get("/healthz", headers={"Origin": "null"}).status_code == 403
        assert client.get("/healthz").status_code == 200  # no Origin: curl, the SDK
        assert client.get("/healthz", headers={"Origin": "http://testserver"}).status_code == 200
        assert 'openrealtime_refusals_total{reason="origin",request="http"} 2' in client.get("/metrics").text


def test_allowed_origins_setting_lets_a_page_in(fake_engines: EngineSet) -> None:
    settings = Settings(allowed_origins="https://app.example")
    with TestClient(create_app(settings, engines=fake_engines)) as client:
        assert client.get("/healthz", headers={"Origin": "https://app.example"}).status_code == 200
        assert client.get("/healthz", headers={"Origin": EVIL}).status_code == 403


def test_cross_origin_websocket_handshake_is_refused_before_the_upgrade(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/v1/realtime?model=gpt-realtime", headers={"Origin": EVIL}),
        ):
            pass
        assert denied.value.status_code == 403
        assert json.loads(denied.value.content)["error"]["code"] == "origin_not_allowed"
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers={"Origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "session.created"


async def test_over_a_real_socket_pages_are_refused_and_sdks_served(fake_engines: EngineSet) -> None:
    async with running_server(Settings(port=0), engines=fake_engines) as url:
        path = f"{url}/v1/realtime/translations?model=gpt-realtime-translate"
        for origin in (EVIL, "null"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(path, origin=origin)  # type: ignore[arg-type]
            assert refused.value.response.status_code == 403
            assert b"origin_not_allowed" in refused.value.response.body
        client = AsyncOpenAI(api_key="sk-local", websocket_base_url=f"{url}/v1")
        async with client.realtime.connect(model="gpt-realtime") as conn:  # the SDK sends no Origin
            assert (await conn.recv()).type == "session.created"


# --- serve flags -----------------------------------------------------------------------------------


def test_every_serve_flag_is_a_setting() -> None:
    parser = build_parser()
    flags = set(vars(parser.parse_args(["serve"]))) - {"command", "func"}
    assert flags <= {f.name for f in fields(Settings)}
    args = parser.parse_args(["serve", "--allowed-origins", "https://app.example", "--session-lifetime-s", "600"])
    assert (args.allowed_origins, args.session_lifetime_s) == ("https://app.example", 600)


# --- admission -------------------------------------------------------------------------------------


def test_admission_counts_places_by_kind_and_logs_a_full_spell_once(caplog: pytest.LogCaptureFixture) -> None:
    admission = Admission({SessionKind.REALTIME: 2, SessionKind.TRANSCRIPTION: UNLIMITED})
    assert [admission.admit(SessionKind.REALTIME) for _ in range(4)] == [True, True, False, False]
    assert all(admission.admit(SessionKind.TRANSCRIPTION) for _ in range(100))
    assert admission.admit(SessionKind.TRANSLATION)  # a kind without a limit is unlimited
    assert admission.total() == 103
    admission.release(SessionKind.REALTIME)
    assert admission.admit(SessionKind.REALTIME)
    assert not admission.admit(SessionKind.REALTIME)
    refusals = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert refusals == ["refusing realtime sessions: all 2 places are taken (logged once until one frees)"] * 2


async def test_a_full_server_refuses_with_an_error_then_1013(fake_engines: EngineSet) -> None:
    settings = Settings(port=0, max_transcription_sessions=1)
    async with running_server(settings, engines=fake_engines) as url:
        path = f"{url}/v1/realtime?intent=transcription"
        async with websockets.connect(path) as first:
            assert json.loads(await first.recv())["type"] == "session.created"
            async with websockets.connect(path) as second:
                event = json.loads(await second.recv())
                assert event["error"]["type"] == "server_error"
                assert event["error"]["code"] == "session_limit_reached"
                assert "limit of 1 transcription sessions" in event["error"]["message"]
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
            async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime") as other_kind:
                assert json.loads(await other_kind.recv())["type"] == "session.created"
        async with websockets.connect(path) as after:  # the first one's place is free again
            assert json.loads(await after.recv())["type"] == "session.created"
