"""The transcription job: stream audio to a transcription session and collect captions in turn order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from openrealtime.client.captions import CaptionBoard
from openrealtime.client.connection import RealtimeConnection
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import server_event_from_dict

FINAL_COMMIT_EVENT_ID = "openrealtime_final_commit"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-transcribe"
DRAIN_TIMEOUT_S = 30.0


@dataclass
class TimedEvent:
    """A server event as it came on the wire, and when (loop clock, seconds)."""

    at_s: float
    event: dict[str, Any]


@dataclass
class TranscriptionResult:
    """Everything a run produced: final transcripts in turn order, and every event with its time."""

    transcripts: list[str]
    board: CaptionBoard
    events: list[TimedEvent] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    audio_started_at_s: float = 0.0


def transcription_session_update(
    *, model: str, language: str | None, vad: bool, silence_duration_ms: int | None = None
) -> dict[str, Any]:
    turn_detection: dict[str, Any] | None = None
    if vad:
        turn_detection = {"type": "server_vad"}
        if silence_duration_ms is not None:
            turn_detection["silence_duration_ms"] = silence_duration_ms
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": model, "language": language},
                    "turn_detection": turn_detection,
                }
            },
        },
    }


async def transcribe_audio(
    conn: RealtimeConnection,
    chunks: AsyncIterator[bytes],
    *,
    model: str = DEFAULT_TRANSCRIPTION_MODEL,
    language: str | None = "en",
    vad: bool = True,
    silence_duration_ms: int | None = None,
    on_event: Callable[[dict[str, Any], CaptionBoard], None] | None = None,
) -> TranscriptionResult:
    """Configure the session, stream ``chunks``, commit what is left, and wait for every transcript."""
    loop = asyncio.get_running_loop()
    board = CaptionBoard()
    result = TranscriptionResult(transcripts=[], board=board)
    await conn.send(
        transcription_session_update(model=model, language=language, vad=vad, silence_duration_ms=silence_duration_ms)
    )
    configured = asyncio.Event()
    finished_sending = asyncio.Event()
    nothing_left = asyncio.Event()  # the final commit was answered (committed, or commit_empty)
    pending: set[str] = set()

    def done() -> bool:
        return finished_sending.is_set() and nothing_left.is_set() and not pending

    async def reader() -> None:
        async for raw in conn:
            result.events.append(TimedEvent(loop.time(), raw))
            event = server_event_from_dict(raw)
            match event:
                case se.SessionUpdated():
                    configured.set()
                case se.Error(error=error):
                    result.errors.append(error.model_dump())
                    if error.event_id == FINAL_COMMIT_EVENT_ID:
                        nothing_left.set()
                    elif not configured.is_set():
                        raise RuntimeError(f"the server refused the session: {error.message}")
                case se.Committed():
                    pending.add(event.item_id)
                    if finished_sending.is_set():
                        nothing_left.set()
                case se.TranscriptionCompleted() | se.TranscriptionFailed():
                    pending.discard(event.item_id)
            board.feed(event)
            if on_event is not None:
                on_event(raw, board)
            if done():
                return

    read_task = asyncio.create_task(reader())
    try:
        waiter = asyncio.create_task(configured.wait())
        await asyncio.wait({read_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if read_task.done():
            read_task.result()
            raise RuntimeError("connection closed before the session was configured")
        result.audio_started_at_s = loop.time()
        async for chunk in chunks:
            await conn.append_audio(chunk)
        finished_sending.set()
        await conn.send({"type": "input_audio_buffer.commit", "event_id": FINAL_COMMIT_EVENT_ID})
        await asyncio.wait_for(read_task, timeout=DRAIN_TIMEOUT_S)
    finally:
        if not read_task.done():
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await read_task
    result.transcripts = board.transcript()
    return result
