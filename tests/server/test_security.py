"""The server's front door (issue 10, risks to close): origins, admission, slow clients, failed keys,
and what the logs and metrics reveal. Fast: fake engines, a real uvicorn on 127.0.0.1 where it counts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import time
import zlib
from dataclasses import fields
from typing import Any

import httpx
import pytest
import websockets
from openai import AsyncOpenAI
from starlette.testclient import TestClient, WebSocketDenialResponse

from openrealtime.cli import build_parser
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.admission import UNLIMITED, Admission
from openrealtime.server.app import create_app
from openrealtime.server.auth import AuthThrottle, authenticate
from openrealtime.server.embedded import running_server
from openrealtime.server.listener import (
    FD_RESERVE,
    MAX_FRAME_BYTES,
    MIN_CONNECTIONS,
    connection_cap,
    raise_descriptor_limit,
)
from openrealtime.server.logs import FoldRepeats, scrub
from openrealtime.server.origins import OriginPolicy
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

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


# --- slow and silent clients -----------------------------------------------------------------------


async def test_a_silent_session_is_closed_and_its_place_freed(fake_engines: EngineSet) -> None:
    settings = Settings(port=0, max_transcription_sessions=1, idle_timeout_s=1)
    async with running_server(settings, engines=fake_engines) as url:
        path = f"{url}/v1/realtime?intent=transcription"
        async with websockets.connect(path) as silent:
            assert json.loads(await silent.recv())["type"] == "session.created"
            event = json.loads(await asyncio.wait_for(silent.recv(), 10))  # then it sends nothing
            assert event["error"]["code"] == "session_idle_timeout"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await silent.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        async with websockets.connect(path) as after:  # its place is free again
            assert json.loads(await after.recv())["type"] == "session.created"


HALF_OPEN = 300
PARTIAL_HEADER = b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT_S) == b""
    except ConnectionResetError:
        return True


async def test_half_open_handshakes_and_silent_connections_are_closed(fake_engines: EngineSet) -> None:
    settings = Settings(port=0, handshake_timeout_s=1)
    async with running_server(settings, engines=fake_engines) as url:
        host, port = url.removeprefix("ws://").split(":")
        streams = [await asyncio.open_connection(host, int(port)) for _ in range(HALF_OPEN)]
        for index, (_, writer) in enumerate(streams):
            if index % 2:  # half the connections send half an upgrade request, the others nothing
                writer.write(PARTIAL_HEADER)
        started = time.monotonic()
        # Meanwhile, a client that sends its whole request is served.
        async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
        closed = await asyncio.gather(*(_closed_by_server(reader) for reader, _ in streams))
        elapsed = time.monotonic() - started
        for _, writer in streams:
            writer.close()
        assert all(closed)
        assert elapsed < TIMEOUT_S / 2


async def test_the_header_deadline_holds_for_the_next_request_on_a_kept_alive_connection(
    fake_engines: EngineSet,
) -> None:
    async with running_server(Settings(port=0, handshake_timeout_s=1), engines=fake_engines) as url:
        host, port = url.removeprefix("ws://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readuntil(b"}")
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # then one byte now and then, forever (slowloris)
        for _ in range(3):
            await asyncio.sleep(0.5)
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(b"X")
        assert await _closed_by_server(reader)
        writer.close()


def test_the_connection_cap_keeps_descriptors_in_reserve() -> None:
    assert connection_cap(1024) == 1024 - FD_RESERVE
    assert connection_cap(64) == MIN_CONNECTIONS
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_descriptor_limit() >= soft


# --- permessage-deflate ----------------------------------------------------------------------------


def _masked_frame(first_byte: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    header = bytes([first_byte]) + (
        bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + length.to_bytes(2, "big")
    )
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def _recv_until_closed(ws: websockets.ClientConnection) -> None:
    while True:
        await ws.recv()


async def test_deflate_is_not_negotiated_and_a_compressed_bomb_is_a_protocol_error(fake_engines: EngineSet) -> None:
    async with (
        running_server(Settings(port=0), engines=fake_engines) as url,
        websockets.connect(f"{url}/v1/realtime?model=gpt-realtime", compression="deflate") as ws,
    ):
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers  # offered, not taken
        assert json.loads(await ws.recv())["type"] == "session.created"
        # 32 MiB of JSON deflated into 33 KB, sent with RSV1 set as if deflate were on.
        bomb = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * MAX_FRAME_BYTES}).encode()
        deflate = zlib.compressobj(wbits=-12)
        compressed = deflate.compress(bomb) + deflate.flush(zlib.Z_SYNC_FLUSH)
        assert len(bomb) // len(compressed) > 1000
        ws.transport.write(_masked_frame(0x80 | 0x40 | 0x1, compressed[:65_000]))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _recv_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1002  # protocol error: nothing was inflated


# --- logs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        ("/v1/realtime?model=m&api_key=sk-secret", "/v1/realtime?model=m&api_key=***"),
        ("/v1/realtime?key=sk-secret&model=m", "/v1/realtime?key=***&model=m"),
        ('"GET /metrics?access_token=abc HTTP/1.1" 401', '"GET /metrics?access_token=*** HTTP/1.1" 401'),
        ("/v1/realtime?Authorization=Bearer%20sk-x", "/v1/realtime?Authorization=***"),
        ("/v1/realtime?model=gpt-realtime&monkey=1", "/v1/realtime?model=gpt-realtime&monkey=***"),
        ("/v1/realtime?model=gpt-realtime", "/v1/realtime?model=gpt-realtime"),
    ],
)
def test_secret_query_parameters_are_scrubbed(line: str, scrubbed: str) -> None:
    assert scrub(line) == scrubbed


def test_repeated_refusal_lines_are_folded() -> None:
    now = [0.0]
    fold = FoldRepeats(interval_s=60.0, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 0, message, None, None)

    passed = []
    for second in range(0, 130, 5):
        now[0] = float(second)
        passed.append(fold.filter(record("Exceeded concurrency limit.")))
        assert fold.filter(record("something else"))
    assert sum(passed) == 3  # at 0, 60 and 120 s


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_a_key_in_the_query_string_never_reaches_the_log(fake_engines: EngineSet) -> None:
    lines = _Lines()
    async with running_server(Settings(port=0), engines=fake_engines) as url:
        upgrade_log = logging.getLogger("uvicorn.error")
        upgrade_log.addHandler(lines)
        level = upgrade_log.level
        upgrade_log.setLevel(logging.INFO)
        try:
            async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime&api_key=sk-secret-123") as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
        finally:
            upgrade_log.removeHandler(lines)
            upgrade_log.setLevel(level)
    accepted = [line for line in lines.lines if "[accepted]" in line]
    assert accepted
    assert all("sk-secret-123" not in line and "api_key=***" in line for line in accepted)


# --- keys: failures logged, counted, throttled -----------------------------------------------------

KEY = "sk-secret-key-123"
KEY_PROTOCOL = "openai-insecure-api-key."


async def test_two_subprotocol_keys_are_refused_not_the_last_one_taken() -> None:
    offered = ["realtime", f"{KEY_PROTOCOL}sk-wrong-guess", f"{KEY_PROTOCOL}{KEY}"]
    result = await authenticate({}, offered, KEY)
    assert not result.ok
    assert (result.code, result.reason, result.subprotocol) == ("invalid_api_key", "ambiguous", "realtime")
    assert (await authenticate({}, ["realtime", f"{KEY_PROTOCOL}{KEY}"], KEY)).ok


def test_the_throttle_refuses_an_address_past_its_failures_for_a_minute() -> None:
    throttle = AuthThrottle(max_failures=3)
    for second in range(3):
        assert not throttle.blocked("10.0.0.1", second)
        throttle.failed("10.0.0.1", second)
    assert throttle.blocked("10.0.0.1", 3.0)
    assert not throttle.blocked("10.0.0.2", 3.0)  # per address
    assert throttle.blocked("10.0.0.1", 59.5)
    assert not throttle.blocked("10.0.0.1", 60.5)  # the failure at 0 s has aged out: 2 left of 3
    assert not AuthThrottle(max_failures=0).blocked("10.0.0.1", 0.0)


def test_the_throttle_forgets_the_stalest_address_past_its_bound() -> None:
    throttle = AuthThrottle(max_failures=1, max_addresses=2)
    for index, address in enumerate(("a", "b", "c")):
        throttle.failed(address, float(index))
    assert not throttle.blocked("a", 3.0)
    assert throttle.blocked("b", 3.0)
    assert throttle.blocked("c", 3.0)


async def _refused(ws: websockets.ClientConnection) -> tuple[dict[str, Any], int]:
    event = json.loads(await ws.recv())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    return event["error"], closed.value.rcvd.code


async def test_failed_keys_are_logged_counted_and_throttled(
    fake_engines: EngineSet, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(port=0, api_key=KEY, max_auth_failures_per_minute=3)
    caplog.set_level(logging.WARNING, logger="openrealtime.server.app")
    async with running_server(settings, engines=fake_engines) as url:
        path = f"{url}/v1/realtime?intent=transcription"
        for guess in ("sk-guess-0000001", "sk-guess-0000002"):
            async with websockets.connect(path, additional_headers={"Authorization": f"Bearer {guess}"}) as ws:
                error, code = await _refused(ws)
                assert (error["code"], code) == ("invalid_api_key", 3000)
                assert guess not in error["message"]
        two_keys = ["realtime", f"{KEY_PROTOCOL}sk-guess-3", f"{KEY_PROTOCOL}{KEY}"]
        async with websockets.connect(path, subprotocols=two_keys) as ws:  # type: ignore[arg-type]
            error, code = await _refused(ws)
            assert (error["code"], code) == ("invalid_api_key", 3000)
        # The fourth attempt from this address is refused even with the right key.
        async with websockets.connect(path, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            error, code = await _refused(ws)
            assert (error["code"], code) == ("rate_limit_exceeded", 1008)
        bearer = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url.replace("ws://", "http://")) as http:
            assert (await http.get("/metrics", headers=bearer)).status_code == 429
    failures = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert failures == [
        "authentication failed from 127.0.0.1 on /v1/realtime: invalid key",
        "authentication failed from 127.0.0.1 on /v1/realtime: invalid key",
        "authentication failed from 127.0.0.1 on /v1/realtime: ambiguous key",
    ]
    assert all("sk-" not in r.getMessage() for r in caplog.records)


def test_metrics_need_the_key_and_healthz_shows_counts_only_with_it(fake_engines: EngineSet) -> None:
    settings = Settings(api_key=KEY, max_auth_failures_per_minute=0)
    with TestClient(create_app(settings, engines=fake_engines)) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401
        assert "openrealtime" not in missing.text
        assert client.get("/metrics", headers={"Authorization": "Bearer sk-wrong-guess"}).status_code == 401
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
        assert metrics.status_code == 200
        assert 'openrealtime_auth_failures_total{reason="missing"} 1' in metrics.text
        assert 'openrealtime_auth_failures_total{reason="invalid"} 1' in metrics.text
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/healthz", headers={"Authorization": "Bearer sk-wrong-guess"}).json() == {"status": "ok"}
        with_key = client.get("/healthz", headers={"Authorization": f"Bearer {KEY}"})
        assert with_key.json() == {"status": "ok", "active_sessions": 0}
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:  # no key set: all open
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").json() == {"status": "ok", "active_sessions": 0}


def test_metrics_show_each_engine_workers_queue_busy_time_and_busiest_session(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:
        text = client.get("/metrics").text
    for name in (
        "openrealtime_engine_queued_jobs",
        "openrealtime_engine_busy_seconds_total",
        "openrealtime_engine_top_session_share",
    ):
        for engine in ("asr", "streams"):
            assert f'{name}{{engine="{engine}"}} ' in text
