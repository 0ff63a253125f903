"""The CLI as a user runs it: subprocesses of ``.venv/bin/openrealtime``."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openrealtime.bench.speech import SENTENCES, conversation, word_error_rate
from openrealtime.client.audio_io import write_wav
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

pytestmark = pytest.mark.real

CLI = [sys.executable, "-m", "openrealtime"]


async def run_cli(*args: str, timeout_s: float = TIMEOUT_S * 6, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
    )
    async with asyncio.timeout(timeout_s):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def base(real_engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0), engines=real_engines) as url:
        yield url


async def test_transcribe_a_file_prints_turns_in_order(base: str, tmp_path: Path) -> None:
    texts = list(SENTENCES[:3])
    audio, _ = conversation(texts)
    wav = tmp_path / "talk.wav"
    write_wav(wav, audio)
    code, out, err = await run_cli(
        "transcribe", str(wav), "--fast", "--url", f"{base}/v1/realtime?intent=transcription"
    )
    assert code == 0, err
    lines = [line.removeprefix("» ").strip() for line in out.splitlines() if line.startswith("» ")]
    # In order and whole: a turn missing or out of order is 30 % or more. Whisper tiny.en misreads a word
    # or two of a fresh piper synthesis now and then ("The quit brown fox jumped": 5.7 %, one CI run).
    assert word_error_rate([" ".join(texts)], [" ".join(lines)]) <= 0.1


async def test_serve_answers_healthz_and_binds_loopback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = "sk-test-secret-4242"
    env = {**os.environ, "OPENREALTIME_PORT": str(port), "OPENREALTIME_API_KEY": secret}
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(TIMEOUT_S * 3):
            while True:
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/healthz")
                except httpx.TransportError:
                    await asyncio.sleep(0.2)  # polling for start-up, not ordering events
                    continue
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.2)
        assert response.json()["status"] == "ok"
    finally:
        process.terminate()
        _, err = await process.communicate()
    log = err.decode()
    assert "127.0.0.1" in log
    assert "starting with" in log
    assert secret not in log, "keys never appear in logs"


async def test_demo_runs_all_three_jobs_offline(tmp_path: Path) -> None:
    code, out, err = await run_cli("demo", "--fast", timeout_s=TIMEOUT_S * 9, cwd=tmp_path)
    assert code == 0, err
    text = out.lower()
    assert "welcome" in text
    assert "network" in text
    assert "paris" in text  # the assistant answered the spoken question
    assert "buenos" in text  # and the sample was translated into Spanish
    for wav in ("demo-answer.wav", "demo-translation.wav"):
        assert (tmp_path / wav).stat().st_size > 24_000, wav
