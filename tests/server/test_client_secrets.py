"""Ephemeral client secrets (issue 11): minting, the store, what an ``ek_`` key opens and what it
cannot do. Fast: fake engines; the official ``openai`` SDK is the oracle over a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from openai import AsyncOpenAI, AuthenticationError, BadRequestError
from starlette.testclient import TestClient

from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.app import create_app
from openrealtime.server.auth import authenticate
from openrealtime.server.embedded import running_server
from openrealtime.server.logs import scrub
from openrealtime.server.minting import MAX_BODY_BYTES, parse_mint_request
from openrealtime.server.secrets import MemorySecretStore, StoreFull
from openrealtime.server.sessions import MISMATCH_CODE, Opened, Primed, Refusal, open_realtime, open_translation
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

KEY = "sk-server-key-123"
KEY_PROTOCOL = "openai-insecure-api-key."
MINT = "/v1/realtime/client_secrets"
MINT_TRANSLATION = "/v1/realtime/translations/client_secrets"
SECRET_SHAPE = re.compile(r"ek_[0-9a-f]{32}")
ASSISTANT = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "You are a pirate. Answer in one sentence.",
    "audio": {"output": {"voice": "marin", "speed": 1.2}},
}


class Clock:
    """Unix time that moves only when a test says so."""

    def __init__(self, now_s: float = 1_800_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    """Fakes for all three session kinds: answers, speech and translation."""
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )
    yield engines
    engines.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sdk(clients: contextlib.AsyncExitStack, **options: Any) -> AsyncOpenAI:
    """An SDK client closed with ``clients`` (its HTTP pool holds sockets)."""
    client = AsyncOpenAI(**options)
    clients.push_async_callback(client.close)
    return client


def header(key: str) -> dict[str, str]:
    """As the server's request headers hold it (lower-cased names)."""
    return {"authorization": f"Bearer {key}"}


# --- the store -------------------------------------------------------------------------------------


def test_minted_values_look_like_openais_and_the_store_keeps_only_their_digests() -> None:
    store = MemorySecretStore(clock=Clock())
    values = {store.mint_now(SessionKind.REALTIME, "{}", 600)[0] for _ in range(200)}
    assert len(values) == 200
    assert all(SECRET_SHAPE.fullmatch(value) for value in values)
    held = repr(store.__dict__)
    assert not any(value in held or value[3:] in held for value in values)


def test_a_secret_opens_until_its_expiry_then_is_purged() -> None:
    clock = Clock()
    store = MemorySecretStore(clock=clock)
    value, secret = store.mint_now(SessionKind.TRANSCRIPTION, '{"type":"transcription"}', 10)
    assert secret.expires_at_s == int(clock.now_s) + 10
    assert store.lookup_now(value) == secret
    assert store.lookup_now(value[:-1] + "0" if value[-1] != "0" else value[:-1] + "1") is None
    assert store.lookup_now("sk-" + value[3:]) is None
    clock.now_s += 9.5
    assert store.lookup_now(value) == secret  # reusable until it expires
    assert store.live_now() == 1
    clock.now_s += 0.5
    assert store.lookup_now(value) is None
    assert store.live_now() == 0


def test_a_full_store_refuses_and_says_when_a_place_frees() -> None:
    clock = Clock()
    store = MemorySecretStore(max_live=2, clock=clock)
    store.mint_now(SessionKind.REALTIME, "{}", 30)
    store.mint_now(SessionKind.REALTIME, "{}", 60)
    with pytest.raises(StoreFull) as full:
        store.mint_now(SessionKind.REALTIME, "{}", 600)
    assert full.value.retry_after_s == 30
    assert "2 secrets" in full.value.message
    clock.now_s += 30
    store.mint_now(SessionKind.REALTIME, "{}", 600)  # the first expired: its place is free
    by_size = MemorySecretStore(max_chars=10, clock=clock)
    by_size.mint_now(SessionKind.REALTIME, "x" * 8, 600)
    with pytest.raises(StoreFull):
        by_size.mint_now(SessionKind.REALTIME, "x" * 3, 600)


# --- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("api_key", [KEY, None])
async def test_a_live_secret_authenticates_by_bearer_or_subprotocol_and_a_stale_one_never(api_key: str | None) -> None:
    clock = Clock()
    store = MemorySecretStore(clock=clock)
    value, secret = store.mint_now(SessionKind.REALTIME, "{}", 60)
    by_header = await authenticate(header(value), [], api_key, store)
    by_protocol = await authenticate({}, ["realtime", KEY_PROTOCOL + value], api_key, store)
    assert (by_header.ok, by_header.secret) == (True, secret)
    assert (by_protocol.ok, by_protocol.secret, by_protocol.subprotocol) == (True, secret, "realtime")
    assert (await authenticate(header(KEY), [], api_key, store)).secret is None  # the server's key is no secret
    guess = await authenticate(header("ek_" + "0" * 32), [], api_key, store)
    assert (guess.ok, guess.code, guess.reason) == (False, "invalid_api_key", "invalid")
    assert "0" * 32 not in guess.message
    clock.now_s += 60
    expired = await authenticate(header(value), [], api_key, store)
    assert (expired.ok, expired.reason) == (False, "invalid")
    assert value not in expired.message
    # With no server key, any other key still passes, as before.
    assert (await authenticate(header("sk-anything"), [], None, store)).ok


# --- the mint request ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "route", "code", "param"),
    [
        (b"{", SessionKind.REALTIME, "invalid_json", None),
        (b"[1]", SessionKind.REALTIME, "invalid_json", None),
        (b'{"expires_after": {"seconds": NaN}}', SessionKind.REALTIME, "invalid_json", None),
        (b"[" * 5000 + b"]" * 5000, SessionKind.REALTIME, "invalid_json", None),
        (b"\xff\xfe{", SessionKind.REALTIME, "invalid_json", None),
        (b'{"ttl": 60}', SessionKind.REALTIME, "unknown_parameter", "ttl"),
        (
            b'{"expires_after": {"seconds": 9}}',
            SessionKind.REALTIME,
            "integer_below_min_value",
            "expires_after.seconds",
        ),
        (
            b'{"expires_after": {"seconds": 7201}}',
            SessionKind.REALTIME,
            "integer_above_max_value",
            "expires_after.seconds",
        ),
        (b'{"expires_after": {"anchor": "now"}}', SessionKind.REALTIME, "invalid_value", "expires_after.anchor"),
        (b'{"expires_after": 60}', SessionKind.REALTIME, "invalid_type", "expires_after"),
        (b'{"session": "realtime"}', SessionKind.REALTIME, "invalid_type", "session"),
        (b'{"session": {"model": "gpt-realtime"}}', SessionKind.REALTIME, "missing_required_parameter", "session.type"),
        (b'{"session": {"type": "translation"}}', SessionKind.REALTIME, "invalid_value", "session.type"),
        (
            b'{"session": {"type": "realtime", "audio": {"output": {"speed": 3}}}}',
            SessionKind.REALTIME,
            "decimal_above_max_value",
            "session.audio.output.speed",
        ),
        (
            b'{"session": {"type": "realtime", "voice": "x"}}',
            SessionKind.REALTIME,
            "unknown_parameter",
            "session.voice",
        ),
        (b"{}", SessionKind.TRANSLATION, "missing_required_parameter", "session"),
        (b'{"session": {"audio": {}}}', SessionKind.TRANSLATION, "missing_required_parameter", "session.model"),
    ],
)
def test_malformed_mint_bodies_are_refused_as_session_update_refuses_them(
    body: bytes, route: SessionKind, code: str, param: str | None
) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_mint_request(body, route)
    assert (refused.value.code, refused.value.param, refused.value.error_type) == (code, param, "invalid_request_error")


def test_a_mint_body_may_be_empty_and_names_the_kind_of_its_session() -> None:
    empty = parse_mint_request(b"", SessionKind.REALTIME)
    assert (empty.kind, empty.ttl_s, empty.session_json) == (SessionKind.REALTIME, 600, '{"type":"realtime"}')
    transcription = parse_mint_request(b'{"session": {"type": "transcription"}}', SessionKind.REALTIME)
    assert transcription.kind is SessionKind.TRANSCRIPTION
    translation = parse_mint_request(b'{"session": {"model": "m"}}', SessionKind.TRANSLATION)
    assert translation.kind is SessionKind.TRANSLATION


# --- which session a secret opens ------------------------------------------------------------------


def _secret(kind: SessionKind, session: dict[str, Any]) -> Any:
    return MemorySecretStore().mint_now(kind, json.dumps(session), 60)[1]


def test_a_secrets_config_is_in_the_one_session_created_and_its_model_wins(engines: EngineSet) -> None:
    opened = open_realtime(
        {"model": "gpt-realtime-mini"}, {}, Settings(), engines, _secret(SessionKind.REALTIME, ASSISTANT)
    )
    assert isinstance(opened, Opened)
    assert isinstance(opened.session, Primed)
    events, _ = opened.session.drain()
    assert [event.type for event in events] == ["session.created"]
    session = events[0].model_dump()["session"]
    assert session["model"] == "gpt-realtime"
    assert session["instructions"] == ASSISTANT["instructions"]
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["expires_at"] > 0
    assert opened.session.drain() == ([], [])  # the first drain is the only one primed


@pytest.mark.parametrize(
    ("kind", "path", "query"),
    [
        (SessionKind.REALTIME, "realtime", {"model": "m", "intent": "transcription"}),
        (SessionKind.TRANSCRIPTION, "realtime", {"model": "m", "intent": "realtime"}),
        (SessionKind.TRANSLATION, "realtime", {"model": "m"}),
        (SessionKind.REALTIME, "translations", {"model": "m"}),
        (SessionKind.TRANSCRIPTION, "translations", {"model": "m"}),
    ],
)
def test_a_secret_opens_its_own_kind_of_session_only(
    engines: EngineSet, kind: SessionKind, path: str, query: dict[str, str]
) -> None:
    config = {"model": "m"} if kind is SessionKind.TRANSLATION else {"type": kind.value}
    secret = _secret(kind, config)
    if path == "realtime":
        refusal = open_realtime(query, {}, Settings(), engines, secret)
    else:
        refusal = open_translation(query, engines, secret=secret)
    assert isinstance(refusal, Refusal)
    assert refusal.code == MISMATCH_CODE
    assert f"opens {kind.value} sessions only" in refusal.message


def test_a_transcription_secret_opens_a_transcription_session_without_intent(engines: EngineSet) -> None:
    config = {"type": "transcription", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    opened = open_realtime(
        {"model": "gpt-realtime"}, {}, Settings(), engines, _secret(SessionKind.TRANSCRIPTION, config)
    )
    assert isinstance(opened, Opened)
    assert opened.kind is SessionKind.TRANSCRIPTION
    created = opened.session.drain()[0][0].model_dump()["session"]
    assert created["type"] == "transcription"
    assert created["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"


# --- the HTTP routes -------------------------------------------------------------------------------


def test_minting_answers_like_openai_with_the_full_resolved_session(engines: EngineSet) -> None:
    clock = Clock()
    app = create_app(Settings(api_key=KEY), engines=engines, secrets=MemorySecretStore(clock=clock))
    with TestClient(app) as client:
        body = {"expires_after": {"anchor": "created_at", "seconds": 120}, "session": ASSISTANT}
        minted = client.post(MINT, json=body, headers=bearer(KEY))
        assert minted.status_code == 200
        assert minted.headers["cache-control"] == "no-store"
        answer = minted.json()
        assert set(answer) == {"value", "expires_at", "session"}
        assert SECRET_SHAPE.fullmatch(answer["value"])
        assert answer["expires_at"] == int(clock.now_s) + 120
        session = answer["session"]
        assert (session["type"], session["object"], session["model"]) == (
            "realtime",
            "realtime.session",
            "gpt-realtime",
        )
        assert session["instructions"] == ASSISTANT["instructions"]
        assert session["audio"]["output"] == {
            "format": {"type": "audio/pcm", "rate": 24000},
            "voice": "marin",
            "speed": 1.2,
        }
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert (session["tools"], session["tool_choice"], session["max_output_tokens"]) == ([], "auto", "inf")
        assert session["expires_at"] == 0
        assert session["id"].startswith("sess_")
        default = client.post("/realtime/client_secrets", headers=bearer(KEY)).json()  # no body: all defaults
        assert default["expires_at"] == int(clock.now_s) + 600
        assert default["session"]["model"] is None
        transcription = client.post(MINT, json={"session": {"type": "transcription"}}, headers=bearer(KEY)).json()
        assert transcription["session"]["object"] == "realtime.transcription_session"
        translation = client.post(
            MINT_TRANSLATION,
            json={"session": {"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}},
            headers=bearer(KEY),
        ).json()
        assert translation["session"]["type"] == "translation"
        assert translation["session"]["audio"]["output"]["language"] == "es"
        metrics = client.get("/metrics", headers=bearer(KEY)).text
        assert 'openrealtime_client_secrets_minted_total{kind="realtime"} 2' in metrics
        assert "openrealtime_live_client_secrets 4" in metrics


def test_what_the_session_code_refuses_is_a_400_with_its_param(engines: EngineSet) -> None:
    with TestClient(create_app(Settings(api_key=KEY), engines=engines)) as client:
        unknown_model = {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-9"}}}}
        refused = client.post(MINT, json={"session": unknown_model}, headers=bearer(KEY))
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "invalid_value",
            "session.audio.input.transcription.model",
        )
        bad_language = {"session": {"model": "m", "audio": {"output": {"language": "not a language"}}}}
        refused = client.post(MINT_TRANSLATION, json=bad_language, headers=bearer(KEY))
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "session.audio.output.language"
        garbage = client.post(MINT, content=b"{not json", headers=bearer(KEY))
        assert garbage.status_code == 400
        assert garbage.json()["error"]["code"] == "invalid_json"
        assert "Traceback" not in garbage.text
        too_big = client.post(MINT, content=b" " * (MAX_BODY_BYTES + 1), headers=bearer(KEY))
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "request_too_large"
        assert client.get(MINT, headers=bearer(KEY)).status_code == 405


def test_only_the_server_key_mints_and_reads_metrics_never_a_secret(engines: EngineSet) -> None:
    with TestClient(create_app(Settings(api_key=KEY, max_auth_failures_per_minute=0), engines=engines)) as client:
        value = client.post(MINT, headers=bearer(KEY)).json()["value"]
        for headers in ({}, bearer("sk-wrong-guess"), bearer(value), bearer("ek_" + "1" * 32)):
            for path in (MINT, MINT_TRANSLATION):
                refused = client.post(path, json={"session": {"model": "m"}}, headers=headers)
                assert refused.status_code == 401
                assert refused.json()["error"]["type"] == "invalid_request_error"
            assert client.get("/metrics", headers=headers).status_code == 401
        assert "active_sessions" not in client.get("/healthz", headers=bearer(value)).json()
        metrics = client.get("/metrics", headers=bearer(KEY)).text
        assert 'openrealtime_auth_failures_total{reason="client_secret"} 3' in metrics
        assert 'openrealtime_auth_failures_total{reason="invalid"} 6' in metrics
        assert value not in metrics


def test_with_no_server_key_anyone_may_mint_but_no_secret_can(engines: EngineSet) -> None:
    with TestClient(create_app(Settings(), engines=engines)) as client:
        minted = client.post(MINT)
        assert minted.status_code == 200
        assert client.post(MINT, headers=bearer("sk-anything")).status_code == 200
        value = minted.json()["value"]
        refused = client.post(MINT, headers=bearer(value))
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")
        stale = client.post(MINT, headers=bearer("ek_" + "2" * 32))
        assert stale.status_code == 401
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=bearer("ek_" + "2" * 32)) as ws:
            error = ws.receive_json()["error"]
            assert error["code"] == "invalid_api_key"
        with client.websocket_connect("/v1/realtime?model=gpt-realtime", headers=bearer(value)) as ws:
            assert ws.receive_json()["type"] == "session.created"


def test_a_full_store_answers_429_with_retry_after(engines: EngineSet) -> None:
    app = create_app(Settings(), engines=engines, secrets=MemorySecretStore(max_live=1, clock=Clock()))
    with TestClient(app) as client:
        assert client.post(MINT, json={"expires_after": {"seconds": 45}}).status_code == 200
        full = client.post(MINT)
        assert full.status_code == 429
        assert full.headers["retry-after"] == "45"
        assert full.json()["error"]["code"] == "client_secret_limit_reached"


def test_pages_of_allowed_origins_may_mint_cross_origin_and_others_may_not(engines: EngineSet) -> None:
    app = create_app(Settings(allowed_origins="https://app.example"), engines=engines)
    with TestClient(app) as client:
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
        }
        allowed = client.options(MINT, headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        minted = client.post(MINT, headers={"Origin": "https://app.example"})
        assert minted.status_code == 200
        assert minted.headers["access-control-allow-origin"] == "https://app.example"
        assert minted.headers["access-control-expose-headers"] == "Location"
        for origin in ("http://evil.example", "null"):
            refused = client.options(MINT, headers={**preflight, "Origin": origin})
            assert refused.status_code == 403
            assert "access-control-allow-origin" not in refused.headers
            assert client.post(MINT, headers={"Origin": origin}).status_code == 403
        same_origin = client.post(MINT, headers={"Origin": "http://testserver"})
        assert same_origin.status_code == 200


def test_client_secrets_are_scrubbed_from_log_lines() -> None:
    value = "ek_68af296e8e408191a1120ab6383263c2"
    assert scrub(f"GET /v1/realtime?model=m&ek={value} HTTP/1.1") == "GET /v1/realtime?model=m&ek=ek_*** HTTP/1.1"
    assert scrub(f"POST /calls/{value}/x") == "POST /calls/ek_***/x"
    assert scrub("seek_0123456789abcdef") == "seek_0123456789abcdef"


# --- over a real socket, with the official SDK -----------------------------------------------------


SERVER_LOGGERS = ("openrealtime", "uvicorn.error", "uvicorn.access")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def _answer(conn: Any) -> Any:
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where is the treasure?"}]}
    )
    await conn.response.create()
    async with asyncio.timeout(TIMEOUT_S):
        async for event in conn:
            if event.type == "response.done":
                return event.response
    raise AssertionError("no response.done")


async def test_the_sdk_mints_a_secret_and_a_browser_key_holds_turns_with_its_config(engines: EngineSet) -> None:
    records = _Records()
    server_logs = [logging.getLogger(name) for name in SERVER_LOGGERS]  # not the clients' own debug logs
    levels = [logger.level for logger in server_logs]
    try:
        async with (
            running_server(Settings(port=0, api_key=KEY), engines=engines) as url,
            contextlib.AsyncExitStack() as clients,
        ):
            for logger in server_logs:  # once uvicorn has set its own levels
                logger.addHandler(records)
                logger.setLevel(logging.DEBUG)
            http = url.replace("ws://", "http://") + "/v1"
            server = sdk(clients, api_key=KEY, base_url=http, websocket_base_url=f"{url}/v1")
            secret = await server.realtime.client_secrets.create(
                expires_after={"anchor": "created_at", "seconds": 60}, session=ASSISTANT
            )
            assert secret.session.type == "realtime"
            assert secret.session.instructions == ASSISTANT["instructions"]
            browser = sdk(clients, api_key=secret.value, base_url=http, websocket_base_url=f"{url}/v1")
            for _ in range(2):  # one secret, several sessions
                async with browser.realtime.connect(model="gpt-realtime-mini") as conn:
                    created = await conn.recv()
                    assert created.type == "session.created"
                    assert created.session.instructions == ASSISTANT["instructions"]
                    assert created.session.model == "gpt-realtime"
                    assert created.session.audio.output.voice == "marin"
                    response = await _answer(conn)
                    assert response.status == "completed"
                    assert response.output[0].content[0].type == "output_audio"
            chat = engines.chat
            assert isinstance(chat, FakeChatModel)
            assert chat.requests[-1].messages[0] == {"role": "system", "content": ASSISTANT["instructions"]}
            with pytest.raises(AuthenticationError):
                await browser.realtime.client_secrets.create()
            with pytest.raises(BadRequestError) as bad:
                await server.realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 7201})
            assert bad.value.code == "integer_above_max_value"
            assert bad.value.param == "expires_after.seconds"
            # The browser subprotocol carries it too, as OpenAI's browser SDKs send it.
            protocols = ["realtime", KEY_PROTOCOL + secret.value]
            async with websockets.connect(f"{url}/v1/realtime?model=gpt-realtime", subprotocols=protocols) as ws:  # type: ignore[arg-type]
                assert ws.subprotocol == "realtime"
                assert json.loads(await ws.recv())["session"]["audio"]["output"]["speed"] == 1.2
    finally:
        for logger, level in zip(server_logs, levels, strict=True):
            logger.removeHandler(records)
            logger.setLevel(level)
    assert any("client secret minted" in line for line in records.lines)
    assert any("[accepted]" in line for line in records.lines)
    assert not [line for line in records.lines if secret.value in line or secret.value[3:] in line]


async def _refused(ws: websockets.ClientConnection) -> tuple[dict[str, Any], int]:
    event = json.loads(await ws.recv())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    return event["error"], closed.value.rcvd.code


async def test_a_secret_expires_for_new_sessions_not_for_the_one_it_opened(engines: EngineSet) -> None:
    clock = Clock()
    settings = Settings(port=0, api_key=KEY, max_auth_failures_per_minute=0)
    app_secrets = MemorySecretStore(clock=clock)
    value, _ = app_secrets.mint_now(SessionKind.REALTIME, json.dumps(ASSISTANT), 10)
    async with (
        running_server(settings, engines=engines, secrets=app_secrets) as url,
        contextlib.AsyncExitStack() as clients,
    ):
        browser = sdk(clients, api_key=value, websocket_base_url=f"{url}/v1")
        async with browser.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
            clock.now_s += 10
            path = f"{url}/v1/realtime?model=gpt-realtime"
            async with websockets.connect(path, additional_headers=bearer(value)) as ws:
                error, code = await _refused(ws)
            assert (error["code"], code) == ("invalid_api_key", 3000)
            assert value not in error["message"]
            assert (await _answer(conn)).status == "completed"  # the open session lives on


async def test_secret_kinds_over_the_sdk_and_failed_secrets_are_throttled(engines: EngineSet) -> None:
    settings = Settings(port=0, api_key=KEY, max_auth_failures_per_minute=2)
    async with running_server(settings, engines=engines) as url, contextlib.AsyncExitStack() as clients:
        server = sdk(clients, api_key=KEY, base_url=url.replace("ws://", "http://") + "/v1")
        translation = await server.realtime.translations.client_secrets.create(
            session={"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}
        )
        assert translation.session.audio is not None
        browser = sdk(clients, api_key=translation.value, websocket_base_url=f"{url}/v1")
        async with browser.realtime.translations.connect(model="gpt-realtime-translate") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            assert created.session.audio.output.language == "es"
        transcription = await server.realtime.client_secrets.create(
            session={"type": "transcription", "audio": {"input": {"transcription": {"language": "en"}}}}
        )
        async with websockets.connect(f"{url}/v1/realtime", additional_headers=bearer(transcription.value)) as ws:
            created = json.loads(await ws.recv())
            assert created["session"]["type"] == "transcription"
            assert created["session"]["audio"]["input"]["transcription"]["language"] == "en"
        mismatched = f"{url}/v1/realtime/translations?model=gpt-realtime-translate"
        async with websockets.connect(mismatched, additional_headers=bearer(transcription.value)) as ws:
            error, code = await _refused(ws)
        assert (error["code"], code) == (MISMATCH_CODE, 4000)
        for guess in ("ek_" + "3" * 32, "ek_garbage"):
            async with websockets.connect(f"{url}/v1/realtime?model=m", additional_headers=bearer(guess)) as ws:
                error, code = await _refused(ws)
            assert (error["code"], code) == ("invalid_api_key", 3000)
        # Two failed secrets from this address: even a live one is refused for a minute now.
        async with websockets.connect(f"{url}/v1/realtime", additional_headers=bearer(transcription.value)) as ws:
            error, code = await _refused(ws)
        assert (error["code"], code) == ("rate_limit_exceeded", 1008)
        async with httpx.AsyncClient(base_url=url.replace("ws://", "http://")) as http:
            assert (await http.post(MINT, headers=bearer(KEY))).status_code == 429
