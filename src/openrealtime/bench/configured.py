"""A realtime session configured for a turn-taking bench, with its event reader running.

``bench turns`` (part 1), its interruptions (part 2) and its echo (part 3) each speak into one session
that they configure the same way (instructions and a turn detection, through ``session.update``) and
read in a task of its own for as long as they use it. This is that opening and closing, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from openrealtime.client.connection import RealtimeConnection


class EventReader(Protocol):
    """A bench's view of a session: it reads the session's events until it is cancelled."""

    async def read_events(self) -> None: ...


R = TypeVar("R", bound=EventReader)


@contextlib.asynccontextmanager
async def configured_session(
    url: str,
    make: Callable[[RealtimeConnection], R],
    *,
    instructions: str,
    turn_detection: dict[str, Any],
    api_key: str | None = None,
) -> AsyncIterator[R]:
    """Connect, make the bench's session object over the connection, configure the session and read
    its events until the block ends.

    Args:
        url: The realtime endpoint.
        make: Builds the bench's object around the connection (its :meth:`EventReader.read_events` is
            run in a task while the block runs).
        instructions: The session's instructions.
        turn_detection: ``audio.input.turn_detection`` as sent.
        api_key: Sent as ``Authorization: Bearer``.
    """
    async with await RealtimeConnection.connect(url, api_key=api_key) as conn:
        session = make(conn)
        update = {
            "type": "realtime",
            "instructions": instructions,
            "audio": {"input": {"turn_detection": turn_detection}},
        }
        await conn.send({"type": "session.update", "session": update})
        reader = asyncio.create_task(session.read_events())
        try:
            yield session
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def wait_until(changed: asyncio.Event, condition: Callable[[], bool], timeout_s: float) -> None:
    """Until ``condition`` holds, looking again each time the reader sets ``changed`` (a new event);
    ``TimeoutError`` after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            changed.clear()
            await changed.wait()


class Items:
    """The conversation items a bench session saw added and deleted: each trial ends by deleting them
    all and clearing the input, so the next one starts from the same short prompt."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.deleted: set[str] = set()

    def heard(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "conversation.item.added":
            self.added.append(event["item"]["id"])
        elif kind == "conversation.item.deleted":
            self.deleted.add(event["item_id"])

    async def forget(self, conn: RealtimeConnection, until: Callable[[Callable[[], bool]], Awaitable[None]]) -> None:
        """Delete every item not deleted yet, wait (``until``, the session's wait on its events) for
        the server to say so, and clear the input buffer."""
        items = [i for i in self.added if i not in self.deleted]
        for item_id in items:
            await conn.send({"type": "conversation.item.delete", "item_id": item_id})
        await until(lambda: all(i in self.deleted for i in items))
        await conn.send({"type": "input_audio_buffer.clear"})
