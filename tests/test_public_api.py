"""The public surface is exactly what the packages re-export; changing it must be deliberate."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "openrealtime": [
        "ConnectionClosedError",
        "EngineError",
        "InvalidStateError",
        "OpenRealtimeError",
        "ProtocolError",
        "__version__",
    ],
    "openrealtime.client": [
        "CaptionBoard",
        "Failover",
        "RealtimeConnection",
        "TranscriptionResult",
        "transcribe_audio",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_exactly_the_public_surface(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]


@pytest.mark.parametrize(("module_name", "name"), [(m, n) for m, names in PUBLIC.items() for n in names])
def test_every_public_name_resolves(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    assert hasattr(module, name)


def test_the_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    import openrealtime

    assert openrealtime.__version__ == version("openrealtime")


def test_the_exceptions_form_one_tree() -> None:
    import openrealtime

    assert issubclass(openrealtime.ProtocolError, openrealtime.OpenRealtimeError)
    assert issubclass(openrealtime.InvalidStateError, openrealtime.ProtocolError)
    assert issubclass(openrealtime.EngineError, openrealtime.OpenRealtimeError)
    assert issubclass(openrealtime.ConnectionClosedError, openrealtime.OpenRealtimeError)
    assert not issubclass(openrealtime.EngineError, openrealtime.ProtocolError)


def test_client_names_come_from_their_modules() -> None:
    from openrealtime import client
    from openrealtime.client.captions import CaptionBoard
    from openrealtime.client.connection import RealtimeConnection
    from openrealtime.client.transcribe import TranscriptionResult, transcribe_audio

    assert (client.CaptionBoard, client.RealtimeConnection) == (CaptionBoard, RealtimeConnection)
    assert (client.TranscriptionResult, client.transcribe_audio) == (TranscriptionResult, transcribe_audio)
