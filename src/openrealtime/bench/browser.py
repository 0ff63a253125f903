"""One spoken question in the browser app, in headless Chromium, timed from the end of speech to the
first answer audio heard (``bench calls --compare --browser``).

Each question is a fresh Chromium (Debian's ``chromium``, or ``$OPENREALTIME_CHROMIUM``, driven by
Playwright through ``executable_path``; nothing is downloaded) whose fake microphone plays a WAV: a
lead of silence (the device starts at ``getUserMedia``, before the call connects), the question,
then silence. The page is the server's own browser app, unmodified: Start, then its call to the
server. A script added before the page's own (Playwright's init script, which the page's
Content-Security-Policy does not govern) notes when ``getUserMedia`` resolved, and listens to every
remote track with a Web Audio analyser every 5 ms, noting when it goes above -60 dBFS: the first
such moment after the end of the question's speech is when the answer was heard, Chromium's jitter
buffer and decoder included. The end of speech is the device's start plus the lead plus where the
question's last speech sample is, so it carries the fake device's start-up error (a few ms).

Playwright is the ``dev`` extra; without it or Chromium the mode says so and stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.bench.speech import WIRE_RATE_HZ
from openrealtime.client.audio_io import write_wav

CHROMIUM_NAMES = ("chromium", "chromium-browser")
MIC_RATE_HZ = 48_000
LEAD_MS = 2500  # Chromium's start, the page, minting and the call's set-up
TAIL_MS = 6000  # silence after the question: the device plays the file once (%noloop)
ANSWER_TIMEOUT_MS = 60_000
SPEECH_FLOOR = 0.01  # as bench assistant: |sample| above this is speech when finding where it ends
MS_PER_S = 1000

# Before the page's scripts: when the microphone opened, and each time a remote track turned audible.
_LISTEN = """
(() => {
  const bench = { micAt: null, heard: [] };
  window.__bench = bench;
  const devices = navigator.mediaDevices;
  const open = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    if (bench.micAt === null) bench.micAt = performance.now();
    return stream;
  };
  const listen = (track) => {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 256;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    let loud = false;
    setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let peak = 0;
      for (const x of data) peak = Math.max(peak, Math.abs(x));
      if (peak > 0.001 && !loud) bench.heard.push(performance.now());
      loud = peak > 0.001;
    }, 5);
  };
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("track", (event) => { if (event.track.kind === "audio") listen(event.track); });
    }
  };
})();
"""
_READ = """
(() => {
  const last = (selector) => [...document.querySelectorAll(selector)].map((e) => e.textContent).pop() ?? "";
  return {
    ...window.__bench,
    user: last("#captions .user .text"),
    assistant: last("#captions .assistant .text"),
    pageHeardMs: window.openrealtime?.stats?.heardMs ?? [],
  };
})()
"""
_ANSWERED = "(window.openrealtime?.stats?.events?.['output_audio_buffer.stopped'] ?? 0) >= 1"


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is missing."""


def chromium() -> str:
    """Debian's chromium, or ``$OPENREALTIME_CHROMIUM``.

    Raises:
        BrowserUnavailable: Neither is there.
    """
    found = os.environ.get("OPENREALTIME_CHROMIUM") or next(
        (path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None
    )
    if not found:
        raise BrowserUnavailable("Chromium is not installed (apt-get install chromium, or set OPENREALTIME_CHROMIUM)")
    return found


def check_browser() -> str:
    """Chromium's path, once Playwright is known to be there too.

    Raises:
        BrowserUnavailable: No Chromium or no Playwright.
    """
    executable = chromium()
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        raise BrowserUnavailable("Playwright is not installed (pip install 'openrealtime[dev]')") from None
    return executable


def page_url(realtime_url: str) -> str:
    """The browser app's address on the server of a realtime URL (``ws://h:p/v1/realtime?..`` -> ``http://h:p/``)."""
    parts = urlsplit(realtime_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "/", "", ""))


def microphone(path: Path, speech: Samples) -> float:
    """Write the fake microphone's WAV for ``speech`` (float32, 24 kHz); where its speech ends (ms)."""
    resampler = StreamResampler(WIRE_RATE_HZ, MIC_RATE_HZ)
    audio = np.concatenate([resampler.process(speech), resampler.flush()]).astype(np.float32)
    lead = np.zeros(MIC_RATE_HZ * LEAD_MS // MS_PER_S, np.float32)
    tail = np.zeros(MIC_RATE_HZ * TAIL_MS // MS_PER_S, np.float32)
    write_wav(path, np.concatenate([lead, audio, tail]), rate_hz=MIC_RATE_HZ)
    loud = np.flatnonzero(np.abs(speech) > SPEECH_FLOOR)
    speech_end = (int(loud[-1]) + 1 if loud.size else speech.size) / WIRE_RATE_HZ * MS_PER_S
    return LEAD_MS + speech_end


def _args(wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]


@dataclass
class PageTurn:
    """One question in the page: end of speech → first answer audio heard (seconds, ``None`` if none
    was), the page's captions of both sides, and the page's own figure, ``speech_stopped`` → heard
    (its meter: RMS over 0.01 every 30 ms), against which the end-of-speech anchor can be checked."""

    first_audio_s: float | None
    heard: str
    answer: str
    page_stopped_to_heard_s: float | None


async def ask_in_browser(realtime_url: str, speech: Samples) -> PageTurn:
    """Ask ``speech`` in the browser app of ``realtime_url``'s server, timed in the page.

    Raises:
        BrowserUnavailable: No Chromium or no Playwright.
    """
    executable = check_browser()
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="openrealtime-browser-") as folder:
        wav = Path(folder) / "question.wav"
        speech_end_ms = microphone(wav, speech)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable, args=_args(wav))
            try:
                page = await browser.new_page()
                await page.add_init_script(_LISTEN)
                await page.goto(page_url(realtime_url))
                await page.click("#start")
                with contextlib.suppress(Exception):  # no answer in time: reported as None
                    await _until(page, _ANSWERED, ANSWER_TIMEOUT_MS)
                bench: dict[str, Any] = await page.evaluate(_READ)
            finally:
                await browser.close()
    page_ms = bench.get("pageHeardMs") or []
    page_s = float(page_ms[0]) / MS_PER_S if page_ms else None
    first = None
    if bench.get("micAt") is not None:
        end_at = float(bench["micAt"]) + speech_end_ms
        heard = [float(t) for t in bench.get("heard", []) if float(t) >= end_at]
        first = (heard[0] - end_at) / MS_PER_S if heard else None
    return PageTurn(first, str(bench.get("user", "")), str(bench.get("assistant", "")), page_s)


async def _until(page: Any, expression: str, timeout_ms: int) -> None:
    """Wait in the page until ``expression`` holds (a polling promise run through ``evaluate``: the
    page's policy forbids what ``wait_for_function`` compiles)."""
    poll = (
        "new Promise((resolve, reject) => { const end = performance.now() + "
        f"{timeout_ms}; const check = () => ({expression}) ? resolve(true) : "
        "performance.now() > end ? reject(new Error('timeout')) : setTimeout(check, 50); check(); })"
    )
    await page.evaluate(poll)
