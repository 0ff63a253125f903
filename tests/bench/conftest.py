"""Fixtures for the benches' tests over the real models."""

from __future__ import annotations

import pytest


@pytest.fixture
def veto_waits_800_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    """A "complete" waits for the LLM's veto until 800 ms into the pause instead of 300
    (``eou_text.WAIT_PAUSE_MS``): alone the LLM answers ~230 ms into it, but a loaded CI machine once
    answered after 300 ms and the turn ended. Whether the veto comes in time is speed, which the
    benches measure; a test holds what the veto decides."""
    from openrealtime.session import eou_text

    monkeypatch.setattr(eou_text, "WAIT_PAUSE_MS", 800)
