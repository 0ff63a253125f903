"""The assistant resumes its session (our server's extension) instead of replaying its conversation,
and falls back to the replay where a session cannot be resumed. Fast: our server over fake engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from openrealtime.client.assistant import Assistant
from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.resume import TAKEN_OVER_CODE, resume_url, resumed, taken_over_error
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer
from openrealtime.runtime.engines import EngineSet
from openrealtime.server import resume as server_resume
from openrealtime.server.embedded import running_server
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
    )
    yield engines
    engines.close()


@pytest.fixture
async def url(engines: EngineSet) -> AsyncIterator[str]:
    async with running_server(Settings(port=0, session_lifetime_s=3), engines=engines) as base:
        yield f"{base}/v1/realtime?model=gpt-realtime"


def test_the_resume_url_sets_one_session_id() -> None:
    url = "ws://h/v1/realtime?model=gpt-realtime&session_id=sess_old"
    assert resume_url(url, "sess_new") == "ws://h/v1/realtime?model=gpt-realtime&session_id=sess_new"
    assert resumed({"id": "sess_a"}, "sess_a")
    assert not resumed({"id": "sess_b"}, "sess_a")
    assert not resumed({"id": "sess_a"}, None)
    assert TAKEN_OVER_CODE == server_resume.TAKEN_OVER_CODE  # one value on both sides of the wire
    assert taken_over_error({"type": "error", "error": {"code": TAKEN_OVER_CODE}})
    assert not taken_over_error({"type": "error", "error": {"code": "session_expired"}})


async def say(assistant: Assistant, text: str) -> None:
    """A user message and its answer, through the assistant."""
    done = len(assistant.responses)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await assistant.send({"type": "conversation.item.create", "item": item})
    await assistant.create_response()
    await assistant.wait_until(lambda: len(assistant.responses) > done, timeout_s=TIMEOUT_S)


def roles(chat: Any) -> list[str]:
    return [m["role"] for m in chat.requests[-1].messages]


async def test_a_planned_move_resumes_the_same_session_with_nothing_replayed(url: str, engines: EngineSet) -> None:
    sent: list[str] = []
    async with Assistant(AssistantOptions(url=url, reconnect_margin_s=0)) as assistant:
        await say(assistant, "My name is Ada.")
        session_id = assistant.session["id"]
        before = [i.id for i in assistant.history.items()]
        original_send = assistant.send

        async def counting_send(event: dict[str, Any]) -> bool:
            sent.append(event["type"])
            return await original_send(event)

        assistant.send = counting_send  # type: ignore[method-assign]
        await assistant.reconnect()
        assert assistant.session["id"] == session_id
        assert (await assistant.retrieve(before[0]))["content"][0]["text"] == "My name is Ada."
        await say(assistant, "What is my name?")
        assert assistant.errors == []  # the old connection's takeover error is ours, not reported
    assert roles(engines.chat) == ["system", "user", "assistant", "user"]  # none replayed twice
    ids = [i.id for i in assistant.history.items()]
    assert ids[: len(before)] == before
    assert len(ids) == len(set(ids))


async def test_after_the_lifetime_cap_the_assistant_resumes_past_it(url: str, engines: EngineSet) -> None:
    # The margin is larger than the 3 s lifetime: no early move, so the cap closes the connection.
    async with Assistant(AssistantOptions(url=url, reconnect_margin_s=60)) as assistant:
        await say(assistant, "My name is Ada.")
        session_id = assistant.session["id"]
        await assistant.wait_until(lambda: assistant.reconnects == 1, timeout_s=TIMEOUT_S)
        assert assistant.session["id"] == session_id
        await asyncio.sleep(0)
        await say(assistant, "What is my name?")
    assert roles(engines.chat) == ["system", "user", "assistant", "user"]
