"""Pipecat against the server: pipecat-ai's own ``OpenAIRealtimeLLMService``, unmodified, in a pipeline
run by ``tests/clients/pipecat_client.py`` in ``.venv-clients`` (``./run setup`` makes it with
``pipecat-ai[openai]`` at the version pinned in ``run``; its dependencies would downgrade ``.venv``'s,
so it is a separate environment). The script connects to a server started here, holds a spoken turn,
a tool call round trip and an interruption, and prints a JSON summary that is checked below.

Skipped, saying why, when ``.venv-clients`` is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openrealtime.contracts import ChatChunk, ChatDone, ChatRequest, TextDelta, ToolCallDelta
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

ROOT = Path(__file__).parents[2]
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"
SCRIPT = Path(__file__).parent / "pipecat_client.py"
SAMPLES = ROOT / "src" / "openrealtime" / "samples"
# The version ./run setup installs (CLIENT_PACKAGES in run).
PINNED = re.search(r'"pipecat-ai\[openai\]==([^"]+)"', (ROOT / "run").read_text())

GREETING = "Hello."
FIRST_ANSWER = "Hello there. How can I help you today?"
WEATHER_ANSWER = "It is sunny and 21 degrees in Paris."
LONG_ANSWER = " ".join(["This is a long answer that goes on for a while, so that it can be talked over."] * 6)
AFTER_BARGE_IN = "Okay, I stopped."


def user_turns(request: ChatRequest) -> int:
    return sum(m.get("role") == "user" for m in request.messages)


class ScriptedModel:
    """Answers by the number of user messages so far: the greeting (pipecat's context brings one), a
    spoken turn, a weather question (a ``get_weather`` call, then an answer built on its result), a
    long answer to talk over, and what follows the barge-in."""

    context_tokens = 4096

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        self.requests.append(request)
        turn = user_turns(request)
        last = request.messages[-1] if request.messages else {}
        if turn == 3 and last.get("role") != "tool" and any(t.name == "get_weather" for t in request.tools):
            yield ToolCallDelta(index=0, name="get_weather", arguments=json.dumps({"city": "Paris"}))
            yield ChatDone(finish_reason="tool_calls", input_tokens=10, output_tokens=2)
            return
        reply = {1: GREETING, 2: FIRST_ANSWER, 3: WEATHER_ANSWER, 4: LONG_ANSWER}.get(turn, AFTER_BARGE_IN)
        if turn == 3 and "sunny and 21 degrees" not in str(last.get("content")):
            reply = "The tool did not answer."
        for i, word in enumerate(reply.split(" ")):
            if stop.is_set():
                return
            yield TextDelta(word if i == 0 else " " + word)
        yield ChatDone(finish_reason="stop", input_tokens=10, output_tokens=len(reply.split()))


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    voice = ToneSynthesizer()
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=ScriptedModel(),
        synthesizers={"en": voice, "*": voice},
    )
    yield engines
    engines.close()


async def run_pipecat(url: str, *args: str, timeout_s: float) -> dict[str, Any]:
    if not CLIENTS_PYTHON.exists():
        pytest.skip(f"{CLIENTS_PYTHON.relative_to(ROOT)} is missing: ./run setup installs pipecat-ai[openai] there")
    if not list(ROOT.glob(".venv-clients/lib/python*/site-packages/pipecat/services/openai/realtime/llm.py")):
        pytest.skip("pipecat-ai[openai] is not installed in .venv-clients: ./run setup installs it")
    env = {**os.environ, "PYTHONPATH": ""}
    process = await asyncio.create_subprocess_exec(
        str(CLIENTS_PYTHON),
        str(SCRIPT),
        f"{url}/v1/realtime",
        "--timeout-s",
        str(timeout_s),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=6 * timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    lines = stdout.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        sys.stderr.write(stderr.decode()[-8000:])
        pytest.fail(f"the pipecat script exited {process.returncode} without a summary")
    summary: dict[str, Any] = json.loads(lines[-1])
    if summary.get("failure"):
        sys.stderr.write(stderr.decode()[-8000:])
    return summary


async def test_pipecat_holds_a_spoken_turn_a_tool_call_and_an_interruption(engines: EngineSet) -> None:
    async with running_server(Settings(port=0), engines=engines) as url:
        summary = await run_pipecat(url, timeout_s=TIMEOUT_S)

    assert summary["failure"] is None, summary["failure"]
    assert PINNED is not None
    assert summary["pipecat"] == PINNED.group(1)  # the version run pins, as docs/compatibility.md says
    assert summary["unparsed"] == []  # every event parsed by pipecat's own models, no error event
    assert summary["errors"] == []
    events = summary["server_events"]
    # Connected and configured: pipecat answers session.created with session.update, and reads the
    # session.updated that comes back (what "languages": null once broke).
    assert events[0] == "session.created"
    assert "session.updated" in events
    assert summary["client_events"][0] == "session.update"

    # The spoken turns were heard and transcribed (pipecat's user aggregator wrote what the server
    # transcribed into its context, two turns in one message when the second came before an answer
    # began); answers came as text and audio frames.
    heard = " ".join(m["content"] for m in summary["context"][1:] if m["role"] == "user")
    assert heard.split() == ["hello", "world"] * 4
    assert summary["audio_frames"] > 0
    assert summary["tts_stopped"] >= 4
    assert FIRST_ANSWER in summary["text"]

    # The tool round trip: the server's function_call ran pipecat's registered function, whose
    # result went back as a function_call_output, and the answer built on it followed.
    assert summary["calls"] == [{"city": "Paris"}]
    [output] = summary["function_outputs"]
    assert json.loads(output["output"]) == {"city": "Paris", "forecast": "sunny and 21 degrees"}
    assert WEATHER_ANSWER in summary["text"]
    chat: ScriptedModel = engines.chat  # type: ignore[assignment]
    tool_results = [m for r in chat.requests for m in r.messages if m.get("role") == "tool"]
    assert "sunny and 21 degrees" in str(tool_results[-1]["content"])

    # The interruption: the long answer was cancelled by the user's speech (the server's VAD), pipecat
    # truncated the answer it was playing, the server took the truncate, and the next turn was answered.
    statuses = [(r["status"], r["reason"]) for r in summary["responses"]]
    assert statuses == [("completed", None)] * 4 + [("cancelled", "turn_detected"), ("completed", None)]
    [truncate] = summary["truncates"]
    assert truncate["item_id"] in summary["responses"][4]["items"]
    assert truncate["audio_end_ms"] > 0
    assert "conversation.item.truncated" in summary["server_events"]
    assert LONG_ANSWER not in summary["text"]
    assert LONG_ANSWER.split(".")[0] in summary["text"]
    assert summary["text"].endswith(AFTER_BARGE_IN)


@pytest.mark.real
async def test_pipecat_holds_a_spoken_turn_with_the_real_models(real_engines: EngineSet) -> None:
    """The recorded question, heard by Whisper and answered by SmolLM2 in piper's voice, through pipecat."""
    async with running_server(Settings(port=0), engines=real_engines) as url:
        summary = await run_pipecat(
            url, "--spoken-turn-only", "--speech", str(SAMPLES / "question.wav"), timeout_s=3 * TIMEOUT_S
        )

    assert summary["failure"] is None, summary["failure"]
    assert summary["unparsed"] == []
    assert summary["errors"] == []
    assert "session.updated" in summary["server_events"]
    heard = " ".join(m["content"] for m in summary["context"][1:] if m["role"] == "user")
    assert "capital of france" in heard.lower()
    assert [r["status"] for r in summary["responses"]] == ["completed", "completed"]
    assert "paris" in summary["context"][-1]["content"].lower()
    assert summary["audio_frames"] > 0
