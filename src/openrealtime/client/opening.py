"""Opening an assistant's session: connect to a door, configure it, carry the conversation over.

:func:`open_session` is what :class:`~openrealtime.client.assistant.Assistant` does for its first
session and after every move: a WebRTC call (``transport="webrtc"``), or a WebSocket to the first of
its doors that takes the session (:mod:`~openrealtime.client.failover`); then the one
``session.update``; then the same session asked back when there was one (our server resumes it:
nothing to replay), else the conversation replayed into the new session
(:mod:`~openrealtime.client.resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from openrealtime.client.assistant_config import AssistantOptions
from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.failover import Failover
from openrealtime.client.resume import NOT_RESUMABLE, resume_url, resumed
from openrealtime.client.turns import TurnTaking
from openrealtime.exceptions import ConnectionClosedError, ProtocolError
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import server_event_from_dict

if TYPE_CHECKING:
    from openrealtime.client.assistant import CallAudio
    from openrealtime.client.call import CallConnection

log = logging.getLogger(__name__)

CONFIGURE_TIMEOUT_S = 30.0  # connect, session.created and session.updated


async def connect(
    options: AssistantOptions,
    call_audio: CallAudio | None = None,
    *,
    resume: str | None = None,
    after: int | None = None,
) -> RealtimeConnection | CallConnection:
    """A new connection to ``options.url``: a WebRTC call (``transport="webrtc"``), or a WebSocket to
    the first of ``options.url`` and ``options.urls`` that takes the session, from the door after
    ``after`` (:mod:`~openrealtime.client.failover`); ``resume``: the id of a session to ask back
    (WebSocket only, :mod:`~openrealtime.client.resume`)."""
    if options.transport == "webrtc":
        from openrealtime.client.call import CallConnection

        on_audio = call_audio.on_audio if call_audio is not None else None
        return await CallConnection.connect(options.url, api_key=options.api_key, on_audio=on_audio)
    doors = (options.url, *options.urls)
    urls = [resume_url(url, resume) for url in doors] if resume is not None else doors
    return await RealtimeConnection.connect(Failover.of(urls), api_key=options.api_key, after=after)


async def open_session(
    options: AssistantOptions,
    update: dict[str, Any],
    turns: TurnTaking,
    call_audio: CallAudio | None = None,
    *,
    after: int | None = None,
) -> RealtimeConnection | CallConnection:
    """Connect, configure with ``update`` (``session.update``), and carry the conversation over: the
    same session asked back when there was one (our server resumes it: nothing to replay), else its
    items replayed into the new session (:mod:`~openrealtime.client.resume`). ``after``: the door
    just lost, tried last.

    Raises:
        ProtocolError: If the server refuses the configuration.
    """
    previous = turns.session.get("id") if options.transport != "webrtc" else None
    if isinstance(previous, str) and previous:
        try:
            return await _configured(options, update, turns, call_audio, resume=previous, after=after)
        except ProtocolError as exc:
            if exc.code not in NOT_RESUMABLE:
                raise
            log.info("session %s cannot be resumed (%s); opening a new one", previous, exc.code)
    return await _configured(options, update, turns, call_audio, after=after)


async def _configured(
    options: AssistantOptions,
    update: dict[str, Any],
    turns: TurnTaking,
    call_audio: CallAudio | None,
    *,
    resume: str | None = None,
    after: int | None = None,
) -> RealtimeConnection | CallConnection:
    conn = await connect(options, call_audio, resume=resume, after=after)
    try:
        async with asyncio.timeout(CONFIGURE_TIMEOUT_S):
            with contextlib.suppress(ConnectionClosedError):  # refused while connecting: its error is read below
                await conn.send(update)
            while not isinstance(event := server_event_from_dict(await conn.recv()), se.SessionUpdated):
                if isinstance(event, se.Error):
                    raise ProtocolError(
                        f"the server refused the session: {event.error.message}",
                        code=event.error.code,
                        param=event.error.param,
                    )
                if isinstance(event, se.SessionCreated):
                    turns.on_session(event)
            turns.on_session(event)
        if not resumed(turns.session, resume):  # a new session: the conversation is replayed into it
            for replay in turns.history.replay_events():
                await conn.send(replay)
    except BaseException:
        await conn.close()
        raise
    turns.session_opened()
    return conn
