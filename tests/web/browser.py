"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright through
``executable_path`` (never ``playwright install``, which downloads a browser), with a fake
microphone that plays a WAV file (reference webrtc.md section 4).

Without Chromium or Playwright the tests that use it are skipped, saying which is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from openrealtime.client.audio_io import write_wav

CHROMIUM_NAMES = ("chromium", "chromium-browser")
MIC_RATE_HZ = 48_000
# The fake device starts playing at getUserMedia, before the call connects: lead with silence. The
# tail of silence lets the turn end (%noloop: the file plays once, then the microphone is silent).
MIC_LEAD_MS = 1500
MIC_TAIL_MS = 2000
POLL_MS = 50


def chromium() -> str | None:
    """Debian's chromium, or ``$OPENREALTIME_CHROMIUM``."""
    configured = os.environ.get("OPENREALTIME_CHROMIUM")
    if configured:
        return configured
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def microphone_wav(path: Path, speech: np.ndarray, rate_hz: int) -> Path:
    """``speech`` (float32 at ``rate_hz``) between the lead and tail silences, as the fake mic's WAV."""
    audio = soxr.resample(speech.astype(np.float32), rate_hz, MIC_RATE_HZ).astype(np.float32)
    lead = np.zeros(MIC_RATE_HZ * MIC_LEAD_MS // 1000, np.float32)
    tail = np.zeros(MIC_RATE_HZ * MIC_TAIL_MS // 1000, np.float32)
    write_wav(path, np.concatenate([lead, audio, tail]), rate_hz=MIC_RATE_HZ)
    return path


@contextlib.asynccontextmanager
async def browser_page(
    microphone: Path, *, trust_any_certificate: bool = False
) -> AsyncIterator[tuple[Any, list[str]]]:
    """A page in a fresh headless Chromium whose microphone plays ``microphone``; also the list the
    page's console errors and uncaught exceptions are collected in (a CSP violation is one).
    ``trust_any_certificate`` for a server with a self-signed certificate."""
    assert microphone.is_absolute(), "Chromium reads the fake microphone's file from its own directory"
    executable = chromium()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (./run installs it as root: apt-get install chromium)")
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (the dev extra)")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=args)
        try:
            page = await browser.new_page(ignore_https_errors=trust_any_certificate)
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            await browser.close()


async def until(page: Any, expression: str, *, timeout_s: float) -> None:
    """Wait until ``expression`` is true in the page. Playwright's ``wait_for_function`` compiles its
    predicate in the page, which the app's Content-Security-Policy forbids (no unsafe-eval); what
    ``evaluate`` runs comes from the debugger, which the policy does not govern."""
    check = f"const check = () => ({expression}) ? resolve(true) : setTimeout(check, {POLL_MS}); check();"
    poll = f"new Promise((resolve) => {{ {check} }})"
    async with asyncio.timeout(timeout_s):
        await page.evaluate(poll)
