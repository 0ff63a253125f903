"""The browser app in headless Chromium, on the real server over loopback with fake engines: each of
its three modes (three kinds of WebRTC call), driven as a user would (a tab, Start), with the bundled
question on a fake microphone. The page must load with no console error (a Content-Security-Policy violation is one),
and show what the fake engines said."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openrealtime.client.audio_io import read_wav
from openrealtime.contracts import ChatChunk, ChatDone, ChatRequest, TextDelta, ToolCallDelta
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S
from tests.server.test_tls import self_signed
from tests.web.browser import browser_page, microphone_wav, until

SAMPLES = Path(__file__).parents[2] / "src" / "openrealtime" / "samples"
ANSWER = "Hello there. How can I help you today?"
KEY = "sk-browser-test"
BARGE_IN_AFTER_MS = 1500  # the turn ends 500 ms into this pause; the answer plays for 2.3 s


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(ANSWER),
        synthesizers={"en": voice, "*": voice},
        translators=[UppercaseTranslator()],
    )
    yield engines
    engines.close()


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = read_wav(SAMPLES / "question.wav")
    return microphone_wav(tmp_path_factory.mktemp("mic") / "question.wav", audio, 24_000)


@pytest.fixture
async def base(engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=engines) as url:
        yield url.replace("ws://", "http://")


async def events(page: Any) -> dict[str, int]:
    counts: dict[str, int] = await page.evaluate("window.openrealtime.stats.events")
    return counts


async def test_the_assistant_answers_aloud_with_captions_and_the_latency(base: str, question: Path) -> None:
    async with browser_page(question) as (page, errors):
        await page.goto(base + "/")
        await page.click("#start")
        await until(
            page, "(window.openrealtime.stats.events['output_audio_buffer.stopped'] ?? 0) >= 1", timeout_s=TIMEOUT_S
        )
        assistant = await page.inner_text("#captions .assistant .text")
        user = await page.inner_text("#captions .user .text")
        latency = await page.inner_text("#latency")
        stats = await page.evaluate("window.openrealtime.stats")
        assert await page.inner_text("#start") == "Stop"
        await page.click("#start")
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
    assert assistant == ANSWER
    assert user.startswith("hello world")  # the fake transcriber's script
    assert latency.endswith(" ms")
    assert stats["latencyMs"], stats
    assert stats["outputPeak"] > 0.05  # the tone was heard through Web Audio, not only announced
    assert stats["heardMs"], stats
    assert "response.output_audio.delta" not in stats["events"]
    assert errors == []


async def test_live_captions_come_from_a_transcription_call(base: str, question: Path) -> None:
    async with browser_page(question) as (page, errors):
        await page.goto(base + "/")
        await page.click("#tab-transcription")
        await page.click("#start")
        await until(
            page,
            "(window.openrealtime.stats.events['conversation.item.input_audio_transcription.completed'] ?? 0) >= 1",
            timeout_s=TIMEOUT_S,
        )
        caption = await page.inner_text("#captions .caption .text")
        partial = await page.locator("#captions .caption.partial").count()
        seen = await events(page)
        await page.click("#start")
    assert caption.startswith("hello world")
    assert partial == 0
    assert seen["session.created"] == 1
    assert "response.created" not in seen
    assert errors == []


async def test_translation_speaks_and_captions_the_chosen_language(base: str, question: Path) -> None:
    async with browser_page(question) as (page, errors):
        await page.goto(base + "/")
        await page.click("#tab-translation")
        await page.select_option("#language", "fr")
        await page.click("#start")
        await until(page, "window.openrealtime.stats.outputPeak > 0.05", timeout_s=TIMEOUT_S)
        await page.click("#start")  # Stop: the session is closed and its last words still come
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
        heard = await page.inner_text("#captions .source .text")
        translated = await page.inner_text("#captions .target .text")
        stats = await page.evaluate("window.openrealtime.stats")
    assert heard.lower().startswith("hello world")
    assert translated.startswith("[fr] HELLO WORLD")
    assert stats["events"]["session.closed"] == 1
    assert "session.output_audio.delta" not in stats["events"]  # the speech came on the call's track
    assert errors == []


async def test_speaking_over_the_answer_interrupts_it(engines: EngineSet, tmp_path: Path) -> None:
    # The question, a pause that ends the turn, then more speech while the answer (2.3 s of tone) plays.
    # OpenAI's barge-in (a call's default is the adaptive one, tests/webrtc/test_calls_bargein.py): under
    # it, the question's first 0.3 s, in which this fake transcriber reads no word, is let go as a
    # backchannel at its first pause, and the answer has ended when the speech goes on.
    question = read_wav(SAMPLES / "question.wav")
    pause = np.zeros(24_000 * BARGE_IN_AFTER_MS // 1000, np.float32)
    mic = microphone_wav(tmp_path / "barge-in.wav", np.concatenate([question, pause, question]), 24_000)
    async with (
        running_server(Settings(port=0, barge_in="immediate"), engines=engines) as url,
        browser_page(mic) as (page, errors),
    ):
        base = url.replace("ws://", "http://")
        await page.goto(base + "/")
        await page.click("#start")
        await until(
            page, "(window.openrealtime.stats.events['conversation.item.truncated'] ?? 0) >= 1", timeout_s=TIMEOUT_S
        )
        interrupted = await page.get_attribute("#captions .assistant", "data-state")
        stats = await page.evaluate("window.openrealtime.stats")
        await page.click("#start")
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
        still = await page.get_attribute("#captions .assistant", "data-state")
    assert interrupted == "interrupted"
    assert still == "interrupted"  # Stop settles the captions but keeps what happened to them
    assert stats["events"]["output_audio_buffer.cleared"] == 1
    assert stats["events"]["input_audio_buffer.speech_started"] == 2
    assert errors == []


async def test_with_a_key_the_page_asks_for_it_once(engines: EngineSet, question: Path) -> None:
    async with (
        running_server(Settings(port=0, api_key=KEY), engines=engines) as url,
        browser_page(question) as (page, errors),
    ):
        await page.goto(url.replace("ws://", "http://") + "/")
        await page.click("#tab-transcription")
        await page.click("#start")
        await page.fill("#key-input", "sk-wrong")
        await page.click("#key-form button[type=submit]")
        await until(page, "!document.getElementById('toast').hidden", timeout_s=TIMEOUT_S)
        refused = await page.inner_text("#toast")
        await page.click("#start")  # asked again after a refusal
        await page.fill("#key-input", KEY)
        await page.click("#key-form button[type=submit]")
        completed = "conversation.item.input_audio_transcription.completed"
        await until(page, f"(window.openrealtime.stats.events['{completed}'] ?? 0) >= 1", timeout_s=TIMEOUT_S)
        await page.click("#start")
        await until(page, "document.body.dataset.state === 'idle'", timeout_s=TIMEOUT_S)
        await page.click("#start")  # the key is remembered for the tab's life: no dialog this time
        await until(page, "document.body.dataset.state === 'live'", timeout_s=TIMEOUT_S)
        asked_again = await page.is_visible("#key-dialog")
        stored = await page.evaluate("JSON.stringify(localStorage) + document.cookie")
        await page.click("#start")
    assert "key" in refused.lower()
    assert not asked_again
    assert KEY not in stored
    assert [e for e in errors if "401" not in e] == []  # the refused mint is a console error in Chromium


class ClockModel:
    """Asks for the page's clock when it is offered and not yet answered, then says it has the time."""

    context_tokens = 4096

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        answered = [m for m in request.messages if m.get("role") == "tool"]
        if answered:
            zone = json.loads(answered[-1]["content"]).get("zone", "?")
            yield TextDelta(f"Your clock says the zone is {zone}.")
            yield ChatDone(finish_reason="stop")
        elif any(spec.name == "get_current_time" for spec in request.tools):
            yield ToolCallDelta(index=0, name="get_current_time", arguments="{}")
            yield ChatDone(finish_reason="tool_calls")
        else:
            yield TextDelta("I cannot see a clock.")
            yield ChatDone(finish_reason="stop")


async def test_the_page_runs_the_clock_tool_and_shows_the_call(question: Path) -> None:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=ClockModel(),
        synthesizers={"en": voice, "*": voice},
    )
    try:
        async with running_server(Settings(port=0), engines=engines) as url, browser_page(question) as (page, errors):
            await page.goto(url.replace("ws://", "http://") + "/")
            await page.click("#settings summary")
            await page.check("#tools")
            await page.click("#start")
            stopped = "(window.openrealtime.stats.events['output_audio_buffer.stopped'] ?? 0) >= 1"
            await until(page, stopped, timeout_s=TIMEOUT_S)
            tool = await page.inner_text("#captions .tool .text")
            answer = await page.inner_text("#captions .assistant .text")
            zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
            await page.click("#start")
    finally:
        engines.close()
    assert tool.startswith("get_current_time({})")
    assert '"zone"' in tool  # the result the page sent back, shown after the call
    assert answer == f"Your clock says the zone is {zone}."
    assert errors == []


async def test_the_page_works_over_https(engines: EngineSet, question: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = Settings(port=0, ssl_certfile=str(cert), ssl_keyfile=str(key))
    async with (
        running_server(settings, engines=engines) as url,
        browser_page(question, trust_any_certificate=True) as (page, errors),
    ):
        base = url.replace("wss://", "https://")
        await page.goto(base + "/")
        secure = await page.evaluate("window.isSecureContext && location.protocol === 'https:'")
        await page.click("#tab-transcription")
        await page.click("#start")
        completed = "conversation.item.input_audio_transcription.completed"
        await until(page, f"(window.openrealtime.stats.events['{completed}'] ?? 0) >= 1", timeout_s=TIMEOUT_S)
        caption = await page.inner_text("#captions .caption .text")
        await page.click("#start")
    assert url.startswith("wss://")
    assert secure
    assert caption.lower().startswith("hello world")
    assert errors == []
