"""The browser app over the real models (Silero, Whisper tiny.en, SmolLM2, piper), in headless
Chromium: the bundled spoken question on a fake microphone, the assistant mode's Start, and a spoken
answer: its captions on the page name Paris, and its audio was played (the page's Web Audio meter on
the call's remote track heard it between ``output_audio_buffer.started`` and ``stopped``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openrealtime.client.audio_io import read_wav
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.web.browser import browser_page, microphone_wav, until

pytestmark = pytest.mark.real

SAMPLES = Path(__file__).parents[2] / "src" / "openrealtime" / "samples"
INSTRUCTIONS = "You answer questions about geography in one short sentence."
log = logging.getLogger(__name__)


@pytest.fixture
async def base(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield url.replace("ws://", "http://")


async def test_the_page_asks_the_spoken_question_and_hears_paris(base: str, tmp_path: Path) -> None:
    mic = microphone_wav(tmp_path / "question.wav", read_wav(SAMPLES / "question.wav"), 24_000)
    async with browser_page(mic) as (page, errors):
        await page.goto(base + "/")
        await page.click("#settings summary")
        await page.fill("#instructions", INSTRUCTIONS)
        await page.click("#start")
        stopped = "(window.openrealtime.stats.events['output_audio_buffer.stopped'] ?? 0) >= 1"
        await until(page, stopped, timeout_s=TIMEOUT_S * 2)
        user = await page.inner_text("#captions .user .text")
        assistant = await page.inner_text("#captions .assistant .text")
        stats = await page.evaluate("window.openrealtime.stats")
        await page.click("#start")
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
    log.warning(
        "browser: speech_stopped -> output_audio_buffer.started %s ms, -> first answer audio heard %s ms",
        stats["latencyMs"],
        stats["heardMs"],
    )
    assert "capital of france" in user.lower()
    assert "paris" in assistant.lower()
    assert stats["events"]["output_audio_buffer.started"] == 1
    assert stats["outputPeak"] > 0.02  # piper's voice, heard through the page's Web Audio meter
    assert stats["latencyMs"]
    assert stats["heardMs"]
    assert errors == []


async def test_live_captions_of_the_spoken_question(base: str, tmp_path: Path) -> None:
    mic = microphone_wav(tmp_path / "question.wav", read_wav(SAMPLES / "question.wav"), 24_000)
    async with browser_page(mic) as (page, errors):
        await page.goto(base + "/")
        await page.click("#tab-transcription")
        await page.click("#start")
        completed = "conversation.item.input_audio_transcription.completed"
        await until(page, f"(window.openrealtime.stats.events['{completed}'] ?? 0) >= 1", timeout_s=TIMEOUT_S)
        caption = await page.inner_text("#captions .caption .text")
        await page.click("#start")
    assert "capital of france" in caption.lower()
    assert errors == []


async def test_the_spoken_question_translated_into_spanish(base: str, tmp_path: Path) -> None:
    mic = microphone_wav(tmp_path / "question.wav", read_wav(SAMPLES / "question.wav"), 24_000)
    async with browser_page(mic) as (page, errors):
        await page.goto(base + "/")
        await page.click("#tab-translation")
        await page.select_option("#language", "es")
        await page.click("#start")
        await until(page, "document.querySelector('#captions .target') !== null", timeout_s=TIMEOUT_S * 2)
        await until(page, "window.openrealtime.stats.outputPeak > 0.02", timeout_s=TIMEOUT_S)
        await page.click("#start")  # the session closes; the last words still come
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
        heard = " ".join(await page.locator("#captions .source .text").all_inner_texts())
        translated = " ".join(await page.locator("#captions .target .text").all_inner_texts())
        events = await page.evaluate("[window.openrealtime.stats.events, window.openrealtime.stats.errors]")
    assert "capital of france" in heard.lower(), (heard, translated, events)
    assert "francia" in translated.lower()
    assert events[1] == []  # no error event: the page stops sending before it closes the session
    assert errors == []
