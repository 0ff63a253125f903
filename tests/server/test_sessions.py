"""Which session a connect opens, or why it is refused: decided without a socket."""

from __future__ import annotations

import pytest

from openrealtime.protocol.codec import SessionKind
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.sessions import CLOSE_BAD_REQUEST, Opened, Refusal, open_realtime, open_translation
from openrealtime.server.settings import Settings
from openrealtime.session.realtime import RealtimeSession
from openrealtime.session.transcription import TranscriptionSession
from openrealtime.session.translation import TranslationSession

SETTINGS = Settings(session_lifetime_s=600, llm_context_tokens=1234)


@pytest.mark.parametrize("query", [{"model": "gpt-realtime"}, {"model": "gpt-realtime-2", "intent": "realtime"}])
def test_a_model_opens_a_realtime_session(fake_engines: EngineSet, query: dict[str, str]) -> None:
    opened = open_realtime(query, {}, SETTINGS, fake_engines)
    assert isinstance(opened, Opened)
    assert opened.kind is SessionKind.REALTIME
    assert isinstance(opened.session, RealtimeSession)


def test_intent_transcription_opens_a_transcription_session_without_a_model(fake_engines: EngineSet) -> None:
    opened = open_realtime({"intent": "transcription"}, {}, SETTINGS, fake_engines)
    assert isinstance(opened, Opened)
    assert opened.kind is SessionKind.TRANSCRIPTION
    assert isinstance(opened.session, TranscriptionSession)
    assert opened.session.info.lifetime_s == 600


@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        ({"model": "gpt-realtime"}, {"openai-beta": "realtime=v1"}, "beta_api_shape_disabled"),
        ({"model": "gpt-realtime", "intent": "chat"}, {}, "invalid_intent"),
        ({}, {}, "missing_model"),
    ],
)
def test_realtime_refusals(fake_engines: EngineSet, query: dict[str, str], headers: dict[str, str], code: str) -> None:
    refusal = open_realtime(query, headers, SETTINGS, fake_engines)
    assert isinstance(refusal, Refusal)
    assert (refusal.code, refusal.close_code) == (code, CLOSE_BAD_REQUEST)


def test_translation_opens_for_any_model(fake_engines: EngineSet) -> None:
    opened = open_translation({"model": "gpt-realtime-translate"}, fake_engines)
    assert isinstance(opened, Opened)
    assert opened.kind is SessionKind.TRANSLATION
    assert isinstance(opened.session, TranslationSession)


@pytest.mark.parametrize(
    ("query", "code"), [({"model": "m", "intent": "transcription"}, "invalid_intent"), ({"model": ""}, "missing_model")]
)
def test_translation_refusals(fake_engines: EngineSet, query: dict[str, str], code: str) -> None:
    refusal = open_translation(query, fake_engines)
    assert isinstance(refusal, Refusal)
    assert refusal.code == code


def test_served_sessions_of_every_kind_expire_after_the_configured_lifetime(fake_engines: EngineSet) -> None:
    import time

    from starlette.testclient import TestClient

    from openrealtime.server.app import create_app
    from openrealtime.server.settings import Settings

    with TestClient(create_app(Settings(session_lifetime_s=120), engines=fake_engines)) as client:
        for path in ("/v1/realtime?model=gpt-realtime", "/v1/realtime/translations?model=gpt-realtime-translate"):
            with client.websocket_connect(path) as ws:
                created = ws.receive_json()
            assert created["type"] == "session.created"
            assert abs(created["session"]["expires_at"] - (time.time() + 120)) < 5
