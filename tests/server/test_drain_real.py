"""A front door drained for real (issue 15): two ``openrealtime serve`` processes with the real models
on one Redis, a conversation through the client library on the first, SIGTERM to it while it
answers. The answer finishes, the connection closes with 1012, the process exits 0 within its grace,
and the assistant resumes the same session on the second process with every item kept.
Skips where ``redis-server`` is not installed."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrealtime.client.assistant import Assistant
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.connection import RealtimeConnection
from openrealtime.server.drain import CLOSE_SERVICE_RESTART
from tests.conftest import TIMEOUT_S
from tests.state.redis_server import redis_server

pytestmark = pytest.mark.real

# Long enough for a slow, shared machine to finish the answer in flight; the drain ends the session as
# soon as it has (the log says "ended between turns"), so the test takes what the answer takes.
GRACE_S = 120.0
LOAD_TIMEOUT_S = 15 * TIMEOUT_S  # two processes loading Whisper, SmolLM2 and piper on shared cores
ANSWER_TIMEOUT_S = 6 * TIMEOUT_S
PATH = "/v1/realtime?model=gpt-realtime"
MAX_ANSWER_TOKENS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def door(state_url: str, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``openrealtime serve`` in a process of its own, ready; yields its ws:// base and the process."""
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "openrealtime"),
        "serve",
        "--port",
        str(port),
        "--state-url",
        state_url,
        "--drain-grace-s",
        str(GRACE_S),
        "--no-web-app",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not get ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def ask(assistant: Assistant, text: str) -> None:
    """A user message and a short answer to it."""
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await assistant.send({"type": "conversation.item.create", "item": item})
    await assistant.create_response({"max_output_tokens": MAX_ANSWER_TOKENS})


async def test_sigterm_finishes_the_answer_exits_0_and_the_session_resumes_on_the_other_door(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    with (
        redis_server(tmp_path / "redis") as state_url,
        door(state_url, tmp_path / "a.log") as (door_a, process_a),
        door(state_url, tmp_path / "b.log") as (door_b, _),
    ):
        seen: list[str] = []

        def on_event(event: dict[str, Any], at_s: float) -> None:
            seen.append(str(event.get("type")))

        options = AssistantOptions(
            url=f"{door_a}{PATH}",
            urls=(f"{door_b}{PATH}",),
            instructions="You are a helpful assistant. Answer in one or two short sentences.",
        )
        async with Assistant(options, on_event=on_event) as assistant:
            session_id = assistant.session["id"]
            await ask(assistant, "My name is Ada and I live in Rome.")
            await assistant.wait_until(
                lambda: len(assistant.responses) == 1 and assistant.idle(), timeout_s=ANSWER_TIMEOUT_S
            )
            seen.clear()
            await ask(assistant, "Tell me a short story about a cat.")
            await assistant.wait_until(lambda: "response.output_audio.delta" in seen, timeout_s=ANSWER_TIMEOUT_S)
            on_door_a = assistant._conn  # the connection the drain will close
            assert isinstance(on_door_a, RealtimeConnection)
            process_a.send_signal(signal.SIGTERM)  # mid-answer
            sigterm_at = time.monotonic()
            await assistant.wait_until(lambda: assistant.reconnects == 1, timeout_s=GRACE_S + TIMEOUT_S)
            # The answer in flight finished on door A before it let the session go.
            # (ended by itself: complete, or at the token cap the test asked for; never cancelled or failed)
            finished = [(r["status"], (r.get("status_details") or {}).get("reason")) for r in assistant.responses]
            assert finished[0] == ("completed", None)
            assert finished[1] in (("completed", None), ("incomplete", "max_output_tokens"))
            assert on_door_a.close_code == CLOSE_SERVICE_RESTART
            assert process_a.wait(timeout=GRACE_S + TIMEOUT_S) == 0
            assert time.monotonic() - sigterm_at < GRACE_S
            # The same session, on door B, with every item of the conversation.
            assert assistant.session["id"] == session_id
            items = [item.id for item in assistant.history.items()]
            assert len(items) == 4  # two questions, two answers
            for item_id in items:
                assert (await assistant.retrieve(item_id))["id"] == item_id
            await ask(assistant, "What is my name?")
            await assistant.wait_until(
                lambda: len(assistant.responses) == 3 and assistant.idle(), timeout_s=ANSWER_TIMEOUT_S
            )
            assert assistant.responses[-1]["status"] == "completed"
            assert [item.id for item in assistant.history.items()][:4] == items
            assert len(assistant.history.items()) == 6
        log_a = (tmp_path / "a.log").read_text()
        assert "drained in" in log_a
        assert "1 sessions ended between turns" in log_a
