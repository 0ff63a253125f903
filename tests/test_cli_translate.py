"""``openrealtime translate`` as a user runs it, against the real server with the offline models."""

from __future__ import annotations

import asyncio
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from openrealtime.bench.speech import speak
from openrealtime.client.audio_io import write_wav
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S, quiet

pytestmark = pytest.mark.real


@pytest.fixture
async def base(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield url


async def test_translate_a_file_shows_both_sides_and_saves_the_speech(base: str, tmp_path: Path) -> None:
    wav, out = tmp_path / "talk.wav", tmp_path / "es.wav"
    write_wav(
        wav, np.concatenate([quiet(300), speak("I would like to book a table for two people tonight."), quiet(600)])
    )
    url = f"{base}/v1/realtime/translations?model=gpt-realtime-translate"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "openrealtime", "translate", "--to", "es", str(wav), "--fast"],
        *["--url", url, "--out", str(out)],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT_S * 3):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    rows = [line.split("│") for line in stdout.decode().splitlines() if "│" in line]
    source = " ".join(left.strip() for left, _ in rows)
    target = " ".join(right.strip() for _, right in rows)
    assert "table for two people" in source
    assert "mesa para dos personas" in target
    with wave.open(str(out), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        assert w.getnframes() > 24_000  # more than a second of translated speech
    assert "saved" in stderr.decode()


async def test_a_language_the_server_cannot_serve_is_a_clear_error(base: str, tmp_path: Path) -> None:
    wav = tmp_path / "talk.wav"
    write_wav(wav, quiet(400))
    url = f"{base}/v1/realtime/translations?model=gpt-realtime-translate"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "openrealtime", "translate", "--to", "zz", str(wav), "--fast", "--url", url],
        *["--out", str(tmp_path / "zz.wav")],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT_S * 3):
        _, stderr = await process.communicate()
    assert process.returncode != 0
    assert "Unsupported output language 'zz'" in stderr.decode()
