"""Resumable sessions (issue 15) over a real socket, the official ``openai`` SDK as the client: a
lost connection comes back with ``?session_id=``, its conversation intact, no item lost or twice.
Fast: fake engines; the same over Redis, and over the real models in ``test_resume_real.py``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI

from openrealtime.contracts import ChatChunk, ChatRequest
from openrealtime.engines.fake import EnergyVad, FakeChatModel, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.resume import CLOSE_TAKEN_OVER, NOT_FOUND_CODE, TAKEN_OVER_CODE
from openrealtime.server.settings import Settings
from tests.state.redis_server import redis_server

KEY = "sk-resume-test"
TEXT_ONLY = {"type": "realtime", "instructions": "You are a pirate.", "output_modalities": ["text"]}


class SlowChat(FakeChatModel):
    """Answers word by word, ``delay_s`` apart: an answer a test can cut off mid-way."""

    def __init__(self, reply: str, delay_s: float) -> None:
        super().__init__(reply)
        self.delay_s = delay_s

    def chat(self, request: ChatRequest, stop: threading.Event) -> Iterator[ChatChunk]:
        for chunk in super().chat(request, stop):
            if stop.wait(self.delay_s):
                return
            yield chunk


def _engines(chat: FakeChatModel | None = None) -> EngineSet:
    return EngineSet(
        vad=EnergyVad(),
        transcriber=FakeTranscriber(),
        transcriber_name="fake",
        chat=chat or FakeChatModel(),
        synthesizers={"*": ToneSynthesizer()},
        translators=[UppercaseTranslator()],
    )


@pytest.fixture
def engines() -> Iterator[EngineSet]:
    engines = _engines()
    yield engines
    engines.close()


@contextlib.asynccontextmanager
async def sdk(url: str) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(api_key=KEY, websocket_base_url=f"{url}/v1")
    try:
        yield client
    finally:
        await client.close()


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def ask(conn: Any, text: str) -> tuple[list[str], Any]:
    """Add a user message, have it answered; the ids of the items added, and ``response.done``."""
    await conn.conversation.item.create(item=user_text(text))
    await conn.response.create()
    added: list[str] = []
    async for event in conn:
        if event.type == "conversation.item.added":
            added.append(event.item.id)
        if event.type == "response.done":
            return added, event.response
    raise AssertionError("the connection closed before response.done")


async def retrieve(conn: Any, item_id: str) -> Any:
    await conn.conversation.item.retrieve(item_id=item_id)
    async for event in conn:
        if event.type in ("conversation.item.retrieved", "error"):
            return event
    raise AssertionError("the connection closed")


async def conversation_test(url: str, chat: FakeChatModel) -> None:
    """Talk, drop the socket, resume, talk again: the shared scenario of the memory and Redis runs."""
    async with sdk(url) as client:
        async with client.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            session_id, first_expiry = created.session.id, created.session.expires_at
            await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
            before, response = await ask(conn, "My name is Ada.")
            assert response.status == "completed"
        # The socket is gone (the SDK closed it); the session's state stays for the grace window.
        await asyncio.sleep(0.05)
        async with client.realtime.connect(model="gpt-realtime", extra_query={"session_id": session_id}) as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            assert created.session.id == session_id
            assert created.session.instructions == "You are a pirate."  # the config came back
            assert created.session.output_modalities == ["text"]
            assert created.session.expires_at >= first_expiry
            for item_id in before:  # every earlier item, retrievable, with its content
                retrieved = await retrieve(conn, item_id)
                assert retrieved.type == "conversation.item.retrieved", retrieved
                assert retrieved.item.status == "completed"
            after, response = await ask(conn, "What is my name?")
            assert response.status == "completed"
    messages = chat.requests[-1].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]  # none lost or twice
    assert messages[1]["content"] == "My name is Ada."
    assert messages[2]["content"] == chat.reply
    assert not set(before) & set(after)


async def test_a_lost_connection_resumes_with_its_conversation(engines: EngineSet) -> None:
    chat = engines.chat
    assert isinstance(chat, FakeChatModel)
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        await conversation_test(url, chat)


async def test_resume_over_redis_on_another_front_door(engines: EngineSet, tmp_path: Path) -> None:
    """Two servers on one Redis: the session opened on the first resumes on the second."""
    chat = engines.chat
    assert isinstance(chat, FakeChatModel)
    with redis_server(tmp_path) as redis_url:
        settings = Settings(port=0, api_key=KEY, state_url=redis_url)
        async with (
            running_server(settings, engines=engines) as first,
            running_server(settings, engines=engines) as second,
        ):
            async with sdk(first) as client, client.realtime.connect(model="gpt-realtime") as conn:
                session_id = (await conn.recv()).session.id
                await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
                before, _ = await ask(conn, "My name is Ada.")
            await asyncio.sleep(0.05)
            async with sdk(second) as client:
                resume = {"session_id": session_id}
                async with client.realtime.connect(model="gpt-realtime", extra_query=resume) as conn:
                    assert (await conn.recv()).session.id == session_id
                    assert (await retrieve(conn, before[0])).type == "conversation.item.retrieved"
                    await ask(conn, "What is my name?")
    assert chat.requests[-1].messages[1]["content"] == "My name is Ada."


async def _refused(url: str) -> tuple[dict[str, Any], int]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        event = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return event["error"], closed.value.rcvd.code


async def test_unknown_or_expired_ids_are_refused_clearly(engines: EngineSet) -> None:
    settings = Settings(port=0, api_key=KEY, resume_grace_s=1)
    async with running_server(settings, engines=engines) as url:
        error, code = await _refused(f"{url}/v1/realtime?model=gpt-realtime&session_id=sess_nope")
        assert (error["code"], error["param"], code) == (NOT_FOUND_CODE, "session_id", 4000)
        assert "1 seconds" in error["message"]
        async with sdk(url) as client, client.realtime.connect(model="gpt-realtime") as conn:
            session_id = (await conn.recv()).session.id
        # A realtime session is not a translation session.
        error, code = await _refused(f"{url}/v1/realtime/translations?session_id={session_id}")
        assert (error["code"], code) == ("session_type_mismatch", 4000)
        await asyncio.sleep(1.2)  # past the grace window
        error, code = await _refused(f"{url}/v1/realtime?model=gpt-realtime&session_id={session_id}")
        assert error["code"] == NOT_FOUND_CODE


async def _until_closed(conn: Any, errors: list[Any]) -> None:
    async for event in conn:
        if event.type == "error":
            errors.append(event)


async def test_a_resume_takes_over_a_session_still_connected(engines: EngineSet) -> None:
    async with (
        running_server(Settings(port=0, api_key=KEY), engines=engines) as url,
        sdk(url) as client,
        client.realtime.connect(model="gpt-realtime") as old,
    ):
        session_id = (await old.recv()).session.id
        await old.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
        before, _ = await ask(old, "My name is Ada.")
        resume = {"session_id": session_id}
        async with client.realtime.connect(model="gpt-realtime", extra_query=resume) as new:
            assert (await new.recv()).session.id == session_id
            errors: list[Any] = []
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await _until_closed(old, errors)
            assert [e.error.code for e in errors] == [TAKEN_OVER_CODE]
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CLOSE_TAKEN_OVER  # not 1001: the SDK does not come back
            assert (await retrieve(new, before[-1])).item.status == "completed"


async def test_an_answer_cut_off_by_the_loss_comes_back_incomplete_with_what_was_sent() -> None:
    reply = "one two three four five six seven eight nine ten eleven twelve"
    chat = SlowChat(reply, delay_s=0.05)
    engines = _engines(chat)
    try:
        async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url, sdk(url) as client:
            async with client.realtime.connect(model="gpt-realtime") as conn:
                session_id = (await conn.recv()).session.id
                await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
                await conn.conversation.item.create(item=user_text("Count."))
                await conn.response.create()
                heard, answer_id = "", None
                async for event in conn:
                    if event.type == "response.output_text.delta":
                        heard, answer_id = heard + event.delta, event.item_id
                        if len(heard.split()) >= 3:
                            break  # the connection is lost mid-answer
            await asyncio.sleep(0.1)
            resume = {"session_id": session_id}
            async with client.realtime.connect(model="gpt-realtime", extra_query=resume) as conn:
                await conn.recv()
                item = (await retrieve(conn, str(answer_id))).item
        assert item.status == "incomplete"
        kept = item.content[0].text
        assert kept.startswith(heard)
        assert reply.startswith(kept)
        assert kept != reply
    finally:
        engines.close()


async def test_the_lifetime_cap_closes_as_openai_and_the_session_resumes_past_it(engines: EngineSet) -> None:
    settings = Settings(port=0, api_key=KEY, session_lifetime_s=1)
    async with running_server(settings, engines=engines) as url, sdk(url) as client:
        async with client.realtime.connect(model="gpt-realtime") as conn:
            created = await conn.recv()
            await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
            before, _ = await ask(conn, "My name is Ada.")
            codes = [e.error.code async for e in conn if e.type == "error"]
            assert codes == ["session_expired"]
        resume = {"session_id": created.session.id}
        async with client.realtime.connect(model="gpt-realtime", extra_query=resume) as conn:
            again = await conn.recv()
            assert again.session.id == created.session.id
            assert again.session.expires_at > created.session.expires_at
            assert (await retrieve(conn, before[0])).type == "conversation.item.retrieved"


@pytest.mark.parametrize(
    ("path", "config"),
    [
        (
            "/v1/realtime?intent=transcription",
            {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1", "language": "en"}}}},
        ),
        ("/v1/realtime/translations?model=gpt-realtime-translate", {"audio": {"output": {"language": "es"}}}),
    ],
)
async def test_transcription_and_translation_sessions_resume_with_their_config(
    engines: EngineSet, path: str, config: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    kind = "session.update"
    async with running_server(Settings(port=0, api_key=KEY), engines=engines) as url:
        async with websockets.connect(url + path, additional_headers=headers) as ws:
            created = json.loads(await ws.recv())["session"]
            await ws.send(json.dumps({"type": kind, "session": config}))
            updated = json.loads(await ws.recv())
            assert updated["type"] == "session.updated", updated
        await asyncio.sleep(0.05)
        base = path.split("?")[0]
        async with websockets.connect(f"{url}{base}?session_id={created['id']}", additional_headers=headers) as ws:
            again = json.loads(await ws.recv())
    assert again["type"] == "session.created"
    assert again["session"]["id"] == created["id"]
    assert {k: v for k, v in again["session"].items() if k != "expires_at"} == {
        k: v for k, v in updated["session"].items() if k != "expires_at"
    }


async def test_the_sdks_own_reconnection_resumes_when_told_the_session_id(engines: EngineSet) -> None:
    """The openai SDK reconnects by itself after 1001 (the lifetime cap); its ``on_reconnecting``
    hook can ask for the session back, and the conversation goes on past the cap."""
    chat = engines.chat
    assert isinstance(chat, FakeChatModel)
    session: dict[str, str] = {}

    def on_reconnecting(event: Any) -> dict[str, Any]:
        return {"extra_query": {"model": "gpt-realtime", "session_id": session["id"]}}

    settings = Settings(port=0, api_key=KEY, session_lifetime_s=1)
    async with running_server(settings, engines=engines) as url, sdk(url) as client:
        manager = client.realtime.connect(model="gpt-realtime", on_reconnecting=on_reconnecting, initial_delay=0.05)
        async with manager as conn:
            session["id"] = (await conn.recv()).session.id
            await conn.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
            await ask(conn, "My name is Ada.")
            async for event in conn:  # the cap's error, then the SDK is connected again
                if event.type == "session.created":
                    assert event.session.id == session["id"]
                    break
            await ask(conn, "What is my name?")
    assert [m["role"] for m in chat.requests[-1].messages] == ["system", "user", "assistant", "user"]


async def test_a_resume_on_another_front_door_ends_the_connection_still_open_on_the_first(
    engines: EngineSet, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as redis_url:
        settings = Settings(port=0, api_key=KEY, state_url=redis_url)
        async with (
            running_server(settings, engines=engines) as first,
            running_server(settings, engines=engines) as second,
            sdk(first) as client,
            client.realtime.connect(model="gpt-realtime") as old,
        ):
            session_id = (await old.recv()).session.id
            await old.session.update(session=TEXT_ONLY)  # type: ignore[arg-type]
            before, _ = await ask(old, "My name is Ada.")
            async with sdk(second) as other:
                resume = {"session_id": session_id}
                async with other.realtime.connect(model="gpt-realtime", extra_query=resume) as new:
                    assert (await new.recv()).session.id == session_id
                    errors: list[Any] = []
                    with pytest.raises(websockets.ConnectionClosedError) as closed:
                        await _until_closed(old, errors)
                    assert [e.error.code for e in errors] == [TAKEN_OVER_CODE]
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == CLOSE_TAKEN_OVER
                    assert (await retrieve(new, before[-1])).item.status == "completed"
