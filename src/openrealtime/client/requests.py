"""Client events that wait for their reply (``conversation.item.retrieve`` -> ``...retrieved``).

This module owns :class:`PendingRequests`: for each client event sent with an ``event_id``, which
server event answers it and the future its sender awaits. An ``error`` carrying that ``event_id``
(reference 5.1) fails the future with a :class:`~openrealtime.exceptions.ProtocolError` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent

ServerEvent = se.ServerEvent | UnknownServerEvent
Matcher = Callable[[ServerEvent], bool]


class PendingRequests:
    """The replies being waited for, by the ``event_id`` of the client event that asked."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[Matcher, asyncio.Future[ServerEvent]]] = {}

    @contextlib.contextmanager
    def expect(self, event_id: str, matches: Matcher) -> Iterator[asyncio.Future[ServerEvent]]:
        """Wait, within the ``with``, for the first server event that ``matches`` (the future's result)."""
        future: asyncio.Future[ServerEvent] = asyncio.get_running_loop().create_future()
        self._waiting[event_id] = (matches, future)
        try:
            yield future
        finally:
            self._waiting.pop(event_id, None)

    def settle(self, event: ServerEvent) -> None:
        """Answer (or, for an ``error`` naming its ``event_id``, fail) whoever waits for ``event``."""
        if isinstance(event, se.Error):
            waiting = self._waiting.get(event.error.event_id or "")
            if waiting is not None and not waiting[1].done():
                error = event.error
                waiting[1].set_exception(ProtocolError(error.message, code=error.code, param=error.param))
        for matches, future in list(self._waiting.values()):
            if not future.done() and matches(event):
                future.set_result(event)

    def cancel_all(self) -> None:
        """The assistant is closing: nobody gets a reply."""
        for _, future in self._waiting.values():
            future.cancel()
