"""The registry's pure parts; loading the real engines is covered by the ``real_engines`` fixture."""

from __future__ import annotations

from openrealtime.server.registry import parse_voice_paths


def test_parse_voice_paths() -> None:
    assert parse_voice_paths("es=/v/es.onnx, DE = /v/de.onnx") == {"es": "/v/es.onnx", "de": "/v/de.onnx"}
    assert parse_voice_paths("junk,,fr=/v/fr.onnx") == {"fr": "/v/fr.onnx"}
    assert parse_voice_paths(None) == {}
