"""The translation job: stream speech into a translation session, collect both transcripts and the
translated speech, and show them side by side.

Works against this server and against OpenAI's ``wss://api.openai.com/v1/realtime/translations``: it
sends only what the protocol defines (reference section 8): one ``session.update``, appends, one
``session.close``, and it reads until ``session.closed`` so that trailing output is not lost.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, TextIO

from openrealtime.client.connection import RealtimeConnection
from openrealtime.client.transcribe import TimedEvent
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import server_event_from_dict

DEFAULT_TRANSCRIPTION_MODEL = "gpt-realtime-whisper"
DRAIN_TIMEOUT_S = 60.0
_SENTENCE_END = re.compile(r"[.!?…。！？]['\"”’)\]]*\s*$")


@dataclass
class TranslationResult:
    """What a run produced: both transcripts, the translated speech, every event with its time."""

    source: str = ""
    target: str = ""
    audio: bytearray = field(default_factory=bytearray)  # PCM16 mono, at ``sample_rate_hz``
    sample_rate_hz: int = 24_000
    events: list[TimedEvent] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    audio_started_at_s: float = 0.0
    closed: bool = False  # the server sent ``session.closed``


def translation_session_update(
    *,
    language: str,
    transcription_model: str | None = DEFAULT_TRANSCRIPTION_MODEL,
    noise_reduction: str | None = None,
) -> dict[str, Any]:
    """The ``session.update`` of a translation session (no ``type``: it is fixed at creation)."""
    input_: dict[str, Any] = {
        "transcription": {"model": transcription_model} if transcription_model else None,
        "noise_reduction": {"type": noise_reduction} if noise_reduction else None,
    }
    return {"type": "session.update", "session": {"audio": {"input": input_, "output": {"language": language}}}}


async def translate_audio(
    conn: RealtimeConnection,
    chunks: AsyncIterator[bytes],
    *,
    language: str,
    transcription_model: str | None = DEFAULT_TRANSCRIPTION_MODEL,
    noise_reduction: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> TranslationResult:
    """Configure the session, stream ``chunks`` (PCM16, 24 kHz), close, and read to ``session.closed``.

    Raises:
        RuntimeError: If the server refuses the configuration (e.g. a language it cannot serve).
    """
    loop = asyncio.get_running_loop()
    result = TranslationResult()
    configured = asyncio.Event()
    await conn.send(
        translation_session_update(
            language=language, transcription_model=transcription_model, noise_reduction=noise_reduction
        )
    )

    async def reader() -> None:
        async for raw in conn:
            result.events.append(TimedEvent(loop.time(), raw))
            event = server_event_from_dict(raw)
            match event:
                case se.SessionUpdated():
                    configured.set()
                case se.Error(error=error):
                    result.errors.append(error.model_dump())
                    if not configured.is_set():
                        raise RuntimeError(f"the server refused the session: {error.message}")
                case se.InputTranscriptDelta():
                    result.source += event.delta
                case se.OutputTranscriptDelta():
                    result.target += event.delta
                case se.TranslationAudioDelta():
                    result.audio += base64.b64decode(event.delta)
                    result.sample_rate_hz = event.sample_rate
            if on_event is not None:
                on_event(raw)
            if isinstance(event, se.SessionClosed):
                result.closed = True
                return

    read_task = asyncio.create_task(reader())
    try:
        waiter = asyncio.create_task(configured.wait())
        await asyncio.wait({read_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not configured.is_set():
            waiter.cancel()
            read_task.result()  # the refusal, if that is what ended it
            raise RuntimeError("connection closed before the session was configured")
        result.audio_started_at_s = loop.time()
        async for chunk in chunks:
            if read_task.done():
                break
            await conn.append_audio(chunk, translation=True)
        if not read_task.done():
            await conn.send({"type": "session.close"})
        await asyncio.wait_for(read_task, timeout=DRAIN_TIMEOUT_S)
    finally:
        if not read_task.done():
            read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await read_task
    return result


class SideBySideCaptions:
    """Source on the left, translation on the right, one row per translated sentence.

    On a terminal the row being spoken is redrawn in place; a row is printed for good when the
    translation finishes a sentence (the source column takes the source up to its last sentence end).

    Args:
        stream: Where to print (standard output by default).
        width: Total width; the terminal's by default.
    """

    def __init__(self, stream: TextIO | None = None, *, width: int | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width or shutil.get_terminal_size((100, 24)).columns
        self.column = max(20, (self.width - 3) // 2)
        self.source = ""
        self.target = ""
        self.rows: list[tuple[str, str]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.input_transcript.delta":
            self.source += event.get("delta") or ""
        elif kind == "session.output_transcript.delta":
            self.target += event.get("delta") or ""
            if _SENTENCE_END.search(self.target):
                self._commit()
                return
        else:
            return
        if self.tty:
            left, right = self.source.strip()[-self.column :], self.target.strip()[-self.column :]
            self.stream.write(f"\r\x1b[2K{left:<{self.column}} │ {right}")
            self.stream.flush()

    def flush(self) -> None:
        """Print whatever is left as a last row."""
        if self.source.strip() or self.target.strip():
            self._print_row(self.source.strip(), self.target.strip())
        self.source = self.target = ""

    def _commit(self) -> None:
        ends = [m.end() for m in re.finditer(r"[.!?…。！？]['\"”’)\]]*(\s|$)", self.source)]
        cut = ends[-1] if ends else len(self.source)
        source, self.source = self.source[:cut].strip(), self.source[cut:]
        target, self.target = self.target.strip(), ""
        self._print_row(source, target)

    def _print_row(self, source: str, target: str) -> None:
        self.rows.append((source, target))
        left = textwrap.wrap(source, self.column) or [""]
        right = textwrap.wrap(target, self.column) or [""]
        lines = [f"{a:<{self.column}} │ {b}".rstrip() for a, b in zip_longest(left, right, fillvalue="")]
        prefix = "\r\x1b[2K" if self.tty else ""
        self.stream.write(prefix + "\n".join(lines) + "\n")
        self.stream.flush()
