"""Issue 10, defect 9: ``max_output_tokens`` validated as OpenAI does, and a translation session's
``expires_at`` from its real lifetime."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from openrealtime.engines.fake import EnergyVad
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol.codec import SessionKind, parse_client_event
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.sessions import Opened, open_translation
from openrealtime.session.ids import Ids
from openrealtime.session.translation import TranslationSession
from tests.session.test_realtime import make
from tests.session.test_translation import CREATED_AT_S, info

RANGE = "Expected a value between 1 and 4096, or 'inf'"


def response_create(tokens: Any) -> dict[str, Any]:
    return {"type": "response.create", "event_id": "e1", "response": {"max_output_tokens": tokens}}


def session_update(tokens: Any) -> dict[str, Any]:
    return {"type": "session.update", "event_id": "e1", "session": {"type": "realtime", "max_output_tokens": tokens}}


@pytest.mark.parametrize("tokens", [0, -5, 4097, 10**9])
@pytest.mark.parametrize(("event", "param"), [(response_create, "response"), (session_update, "session")])
def test_max_output_tokens_out_of_range_is_invalid_value(tokens: int, event: Any, param: str) -> None:
    with pytest.raises(ProtocolError) as info_:
        parse_client_event(json.dumps(event(tokens)), SessionKind.REALTIME)
    error = info_.value
    assert (error.code, error.param, error.event_id) == ("invalid_value", f"{param}.max_output_tokens", "e1")
    assert error.message == f"Invalid '{param}.max_output_tokens': {RANGE}"


@pytest.mark.parametrize("tokens", [1, 4096, "inf"])
def test_max_output_tokens_in_range_is_taken(tokens: int | str) -> None:
    parsed = parse_client_event(json.dumps(response_create(tokens)), SessionKind.REALTIME)
    assert parsed.response.max_output_tokens == tokens  # type: ignore[attr-defined]
    parsed = parse_client_event(json.dumps(session_update(tokens)), SessionKind.REALTIME)
    assert parsed.session.max_output_tokens == tokens  # type: ignore[attr-defined]


def test_a_refused_response_create_starts_nothing_and_the_session_goes_on() -> None:
    _, driver = make()
    out = driver.send(response_create(0))
    assert [e["type"] for e in out] == ["error"]
    assert out[0]["error"]["param"] == "response.max_output_tokens"
    out = driver.send(response_create(16))
    assert out[-2]["type"] == "response.done"
    assert out[-2]["response"]["max_output_tokens"] == 16


def test_a_translation_session_expires_after_its_own_lifetime() -> None:
    session = TranslationSession(dataclasses.replace(info(), lifetime_s=600), vad=EnergyVad(), ids=Ids())
    events, _ = session.drain()
    assert events[0].session["expires_at"] == CREATED_AT_S + 600  # type: ignore[attr-defined]
    default = TranslationSession(info(), vad=EnergyVad(), ids=Ids())
    assert default.drain()[0][0].session["expires_at"] == CREATED_AT_S + 3600  # type: ignore[attr-defined]


def test_open_translation_threads_the_lifetime(fake_engines: EngineSet) -> None:
    opened = open_translation({"model": "gpt-realtime-translate"}, fake_engines, lifetime_s=120)
    assert isinstance(opened, Opened)
    assert isinstance(opened.session, TranslationSession)
    assert opened.session.info.lifetime_s == 120
