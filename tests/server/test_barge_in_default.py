"""The barge-in's per-door default (issue 13): ``--barge-in auto`` judges speech over the answer on a
WebRTC call, where the server plays it and holds it while it judges, and keeps OpenAI's immediate
cancel on a WebSocket, where a strict client plays it; ``immediate`` and ``adaptive`` apply to both."""

from __future__ import annotations

import pytest

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.sessions import Opened, open_call, open_realtime
from openrealtime.server.settings import Settings
from openrealtime.session.realtime import RealtimeSession


def _barge_in(opened: object) -> str:
    assert isinstance(opened, Opened)
    assert isinstance(opened.session, RealtimeSession)
    return opened.session.rt.barge_in


@pytest.mark.parametrize(
    ("setting", "websocket", "call"),
    [("auto", "immediate", "adaptive"), ("immediate", "immediate", "immediate"), ("adaptive", "adaptive", "adaptive")],
)
def test_each_door_gets_its_barge_in(fake_engines: EngineSet, setting: str, websocket: str, call: str) -> None:
    settings = Settings(barge_in=setting)
    assert _barge_in(open_realtime({"model": "gpt-realtime"}, {}, settings, fake_engines)) == websocket
    assert _barge_in(open_call(None, settings, fake_engines)) == call


def test_auto_is_the_default_and_a_wrong_setting_stops_the_server_at_start() -> None:
    assert Settings().barge_in == "auto"
    with pytest.raises(ValueError, match="barge_in"):
        Settings(barge_in="sometimes")
