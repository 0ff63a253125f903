"""``bench calls --compare --browser``: one question in the browser app in headless Chromium, timed in
the page from the end of speech to the first answer audio heard (fake engines; skipped without
Chromium or Playwright), and the fake microphone's file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from openrealtime.bench import browser
from openrealtime.bench.assistant import REALTIME_PATH
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.client.audio_io import read_wav
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import quiet, tone


def test_the_microphone_file_leads_with_silence_and_says_where_speech_ends(tmp_path: Path) -> None:
    speech = np.concatenate([tone(1000), quiet(300)])
    end_ms = browser.microphone(tmp_path / "mic.wav", speech)
    assert end_ms == pytest.approx(browser.LEAD_MS + 1000, abs=1)
    audio = read_wav(tmp_path / "mic.wav", rate_hz=browser.MIC_RATE_HZ)
    total_ms = browser.LEAD_MS + speech.size * 1000 / WIRE_RATE_HZ + browser.TAIL_MS
    assert audio.size == pytest.approx(browser.MIC_RATE_HZ * total_ms / 1000, abs=64)
    assert not audio[: browser.MIC_RATE_HZ * browser.LEAD_MS // 1000 - 64].any()


def test_the_page_is_the_servers_browser_app() -> None:
    assert browser.page_url("ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime") == "http://127.0.0.1:8000/"
    assert browser.page_url("wss://example.org/v1/realtime") == "https://example.org/"


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel("Paris is the capital of France."),
        synthesizers={"en": voice, "*": voice},
    )
    try:
        async with running_server(Settings(port=0), engines=engines) as url:
            yield url
    finally:
        engines.close()


async def test_a_question_in_the_browser_app_is_timed_in_the_page(base_url: str) -> None:
    try:
        browser.check_browser()
    except browser.BrowserUnavailable as missing:
        pytest.skip(str(missing))
    turn = await browser.ask_in_browser(base_url + REALTIME_PATH, np.concatenate([tone(1000), quiet(200)]))
    assert turn.answer == "Paris is the capital of France."
    assert turn.first_audio_s is not None
    assert 0 < turn.first_audio_s < 10
    assert turn.page_stopped_to_heard_s is not None
    assert turn.page_stopped_to_heard_s < turn.first_audio_s  # speech_stopped comes after the end of speech
