"""``openrealtime bench soak --memory``: whether a closed session's memory goes when it closes.

Issue 10 saw seven 300 MB sessions, opened and closed in turn, leave +1.5 GB until the cyclic garbage
collector ran. Here, with this package's server started in this process and the default models,
``--sessions`` realtime sessions are made as big as the server lets one client make them, one after
another, each closed by its client before the next opens:

* one spoken turn (real speech, committed) answered in audio: the ASR, LLM and TTS paths, the LLM's
  per-session prompt cache included;
* text items until the conversation is full (``conversation_full``: 32 MiB of client-created items);
* uncommitted audio up to the input buffer's cap (600 s, ``input_audio_buffer.append``);
* ``conversation.item.retrieve`` of a large item, not read, until the outbox is full (16 MiB).

The cyclic collector is switched off from each session's connect to the measurements after its
close, so what is freed then is freed by reference counting alone. After each close (the server's
``/healthz`` reports no session), the process's RSS is read: as it is, after ``gc.collect()``, and
after ``malloc_trim(0)`` (glibc keeps freed heap pages; trimming tells that apart from a leak), with
the number of live ``RealtimeSession`` and ``Connection`` objects before and after the collection.
A leak shows as RSS growing session after session, or as sessions still alive; for one still alive
the chain of who holds it is printed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import gc
import json
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from openrealtime.audio.codec import float_to_pcm16
from openrealtime.audio.types import Samples
from openrealtime.bench.assistant import REALTIME_PATH, TRANSCRIPTION_MODEL
from openrealtime.bench.load import rss_mb
from openrealtime.bench.report import progress, write_results
from openrealtime.bench.speech import SENTENCES, WIRE_RATE_HZ, conversation
from openrealtime.bench.target import Target, server_target
from openrealtime.client.connection import RealtimeConnection
from openrealtime.runtime.connection import Connection
from openrealtime.runtime.outbox import OUTBOX_LIMIT_BYTES
from openrealtime.session.input_buffer import MAX_BUFFER_S
from openrealtime.session.realtime import MAX_CREATED_ITEMS_CHARS, RealtimeSession

DEFAULT_SESSIONS = 7  # the seven
BUFFER_S = MAX_BUFFER_S - 10  # uncommitted audio per session, just under the cap
APPEND_S = 10  # audio per input_audio_buffer.append
NOISE_LEVEL = 0.001  # the buffered audio: faint noise (no speech, so no live-caption decodes)
ITEM_CHARS = 256 * 1024  # text per created item
STEP_TIMEOUT_S = 300.0  # each step of filling a session
CLOSED_TIMEOUT_S = 30.0  # for the server to report the session gone after the client closed
CLOSED_POLL_S = 0.1
SPOKEN_SENTENCES = 4
HOLDER_DEPTH = 4  # referrer levels printed for a session still alive
HOLDERS_PER_LEVEL = 3

Speech = Callable[[], Samples]


def spoken_turn() -> Samples:
    """A few sentences of piper speech, about 15 s."""
    audio, _ = conversation(list(SENTENCES[:SPOKEN_SENTENCES]))
    return audio


@dataclass
class SessionMemory:
    """One big session, opened and closed: this process's RSS (MiB) at each point, and what lived on."""

    index: int
    rss_before_mb: float
    rss_open_mb: float  # once the session was full, before closing it
    rss_closed_mb: float  # after the close, no collection
    rss_collected_mb: float  # after gc.collect()
    rss_trimmed_mb: float | None  # after malloc_trim(0); None off glibc
    live_sessions_closed: int  # RealtimeSession objects alive after the close, no collection
    live_sessions_collected: int  # after gc.collect()
    live_connections_collected: int
    python_blocks: int  # sys.getallocatedblocks() after gc.collect(): Python's own allocations
    gc_objects: int  # objects the collector tracks after gc.collect()
    items_added: int
    items_refused: int
    buffered_audio_s: float
    retrieves_unread: int
    answered: bool
    holders: list[str]


def _malloc_trim() -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    libc.malloc_trim(0)
    return True


def live(kind: type) -> int:
    """Objects of ``kind`` the collector tracks now (alive, garbage not yet collected included)."""
    return sum(1 for o in gc.get_objects() if type(o) is kind)  # a dead weakproxy fails isinstance


def holders(kind: type, depth: int = HOLDER_DEPTH) -> list[str]:
    """Who holds the live objects of ``kind``: one line per referrer, ``depth`` levels up."""
    found = [o for o in gc.get_objects() if type(o) is kind]
    lines: list[str] = []
    ignore = {id(found)}

    def describe(obj: object) -> str:
        name = type(obj).__qualname__
        if isinstance(obj, dict):
            return f"dict({len(obj)} keys: {', '.join(map(str, list(obj)[:4]))})"
        if isinstance(obj, types.FrameType):
            code = obj.f_code
            return f"frame {code.co_qualname} {code.co_filename}:{obj.f_lineno}"
        if hasattr(obj, "cr_code") or hasattr(obj, "get_coro"):
            return f"{name} {obj!r:.120}"
        return name

    def walk(obj: object, level: int) -> None:
        if level == depth:
            return
        for ref in gc.get_referrers(obj)[:HOLDERS_PER_LEVEL]:
            if id(ref) in ignore or ref is lines:
                continue
            ignore.add(id(ref))
            lines.append("  " * (level + 1) + describe(ref))
            walk(ref, level + 1)

    for obj in found:
        lines.append(describe(obj))
        walk(obj, 0)
    del found
    return lines


async def _active_sessions(target: Target) -> int | None:
    """``active_sessions`` from the server's ``/healthz``."""
    parts = urlsplit(target.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        auth = f"Authorization: Bearer {target.api_key}\r\n" if target.api_key else ""
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Connection: close\r\n\r\n".encode())
        await writer.drain()
        body = (await reader.read()).partition(b"\r\n\r\n")[2]
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    count = json.loads(body).get("active_sessions")
    return int(count) if count is not None else None


class _Reader:
    """The events of one connection, counted as they come, read in a task of its own until paused."""

    def __init__(self, conn: RealtimeConnection) -> None:
        self.conn = conn
        self.seen: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.last_added: str | None = None

    async def run(self) -> None:
        async for event in self.conn:
            kind = str(event.get("type"))
            self.seen[kind] = self.seen.get(kind, 0) + 1
            if kind == "conversation.item.added":
                self.last_added = str(event["item"]["id"])
            elif kind == "error":
                code = str((event.get("error") or {}).get("code"))
                self.errors[code] = self.errors.get(code, 0) + 1
            self.changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    def items_answered(self) -> int:
        """Created items acknowledged or refused as the conversation is full."""
        return self.count("conversation.item.added") + self.errors.get("conversation_full", 0)

    async def until_items_answered(self, count: int) -> None:
        await self.until(lambda: self.items_answered() >= count)

    def count(self, kind: str) -> int:
        return self.seen.get(kind, 0)


def _session_update() -> dict[str, Any]:
    pcm = {"type": "audio/pcm", "rate": WIRE_RATE_HZ}
    transcription = {"model": TRANSCRIPTION_MODEL, "language": "en"}
    audio = {
        "input": {"format": pcm, "transcription": transcription, "turn_detection": None},
        "output": {"format": pcm},
    }
    return {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"], "audio": audio}}


def _text_item(chars: int) -> dict[str, Any]:
    content = [{"type": "input_text", "text": "remember this " * (chars // 14)}]
    return {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": content}}


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _fill_and_close(target: Target, speech: Samples, *, buffer_s: float, items_chars: int) -> dict[str, Any]:
    """Open a session, make it big, close it; what it took and the RSS while it was full."""
    conn = await RealtimeConnection.connect(target.url, api_key=target.api_key)
    reader = _Reader(conn)
    task = asyncio.create_task(reader.run())
    try:
        await conn.send(_session_update())
        await reader.until(lambda: reader.count("session.updated") >= 1)
        # A spoken turn, answered in audio: the real ASR, LLM and TTS each hold the session a while.
        await conn.append_audio(float_to_pcm16(speech))
        await conn.send({"type": "input_audio_buffer.commit"})
        await conn.send({"type": "response.create"})
        await reader.until(lambda: reader.count("response.done") >= 1)
        answered = reader.count("response.output_audio.delta") > 0
        # Text items, one at a time, until the conversation is full (the server refuses one).
        item = _text_item(ITEM_CHARS)
        added_before = reader.count("conversation.item.added")
        for _ in range(items_chars // ITEM_CHARS + 2):
            answered_items = reader.items_answered()
            await conn.send(item)
            await reader.until_items_answered(answered_items + 1)
            if reader.errors.get("conversation_full", 0):
                break
        # Uncommitted audio up to the buffer's cap; a retrieve after it answers once all is taken in.
        chunk = NOISE_LEVEL * np.random.default_rng(0).standard_normal(WIRE_RATE_HZ * APPEND_S).astype(np.float32)
        encoded = base64.b64encode(float_to_pcm16(chunk)).decode("ascii")
        appends = int(buffer_s // APPEND_S)
        for _ in range(appends):
            await conn.send({"type": "input_audio_buffer.append", "audio": encoded})
        await conn.send({"type": "conversation.item.retrieve", "item_id": "item_none_such"})
        await reader.until(lambda: reader.errors.get("item_retrieve_invalid_item_id", 0) >= 1)
        # The outbox: retrieves of a large item that this client no longer reads.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        big = reader.last_added
        retrieves = OUTBOX_LIMIT_BYTES // ITEM_CHARS + 2
        for _ in range(retrieves):
            await conn.send({"type": "conversation.item.retrieve", "item_id": big})
        await asyncio.sleep(1.0)  # the server fills its outbox; well under its 5 s read-stall limit
        rss_open = rss_mb()
        task = asyncio.create_task(reader.run())  # read again, so the close handshake is not held up
        return {
            "rss_open_mb": rss_open,
            "items_added": reader.count("conversation.item.added") - added_before,
            "items_refused": reader.errors.get("conversation_full", 0),
            "buffered_audio_s": appends * APPEND_S,
            "retrieves_unread": retrieves,
            "answered": answered,
        }
    finally:
        await conn.close()  # read while closing: websockets stops taking frames while 16 lie unread
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _closed(target: Target) -> None:
    """Until the server reports no session open (the closed one's teardown has run)."""
    async with asyncio.timeout(CLOSED_TIMEOUT_S):
        while True:  # polling the server's own report (it has no event to wait on from here)
            if not await _active_sessions(target):
                return
            await asyncio.sleep(CLOSED_POLL_S)


async def measure_sessions(
    target: Target,
    sessions: int,
    *,
    speech: Samples,
    buffer_s: float = BUFFER_S,
    items_chars: int = MAX_CREATED_ITEMS_CHARS,
) -> list[SessionMemory]:
    """``sessions`` big sessions in turn on ``target`` (a server in this process); each one's memory."""
    results: list[SessionMemory] = []
    for index in range(1, sessions + 1):
        with _no_cyclic_gc():
            rss_before = rss_mb()
            filled = await _fill_and_close(target, speech, buffer_s=buffer_s, items_chars=items_chars)
            await _closed(target)
            rss_closed = rss_mb()
            live_closed = live(RealtimeSession)
        gc.collect()
        rss_collected = rss_mb()
        live_collected, connections = live(RealtimeSession), live(Connection)
        python_blocks, gc_objects = sys.getallocatedblocks(), len(gc.get_objects())
        held = holders(RealtimeSession) if live_collected else []
        rss_trimmed = rss_mb() if _malloc_trim() else None
        result = SessionMemory(
            index=index,
            rss_before_mb=rss_before,
            rss_closed_mb=rss_closed,
            rss_collected_mb=rss_collected,
            rss_trimmed_mb=rss_trimmed,
            live_sessions_closed=live_closed,
            live_sessions_collected=live_collected,
            live_connections_collected=connections,
            python_blocks=python_blocks,
            gc_objects=gc_objects,
            holders=held,
            **filled,
        )
        results.append(result)
        trimmed = f"{rss_trimmed:.0f}" if rss_trimmed is not None else "-"
        progress(
            "session",
            index,
            sessions,
            f"RSS {rss_before:.0f} -> open {result.rss_open_mb:.0f} -> closed {rss_closed:.0f}, "
            f"gc {rss_collected:.0f}, trimmed {trimmed} MB; live sessions {live_closed} / {live_collected}; "
            f"Python blocks {python_blocks}, gc objects {gc_objects}",
        )
        for line in held:
            print(f"    held by: {line}", flush=True)
    return results


def summarize(results: list[SessionMemory]) -> dict[str, Any]:
    """Per-session figures, and the growth per session after the first (where a leak shows)."""
    first, last = results[0], results[-1]
    steps = max(1, len(results) - 1)

    def per_session(key: str) -> float | None:
        a, b = getattr(first, key), getattr(last, key)
        return (b - a) / steps if a is not None and b is not None else None

    return {
        "sessions": len(results),
        "session_size_mb": [r.rss_open_mb - r.rss_before_mb for r in results],
        "growth_per_session_closed_mb": per_session("rss_closed_mb"),
        "growth_per_session_collected_mb": per_session("rss_collected_mb"),
        "growth_per_session_trimmed_mb": per_session("rss_trimmed_mb"),
        "growth_total_collected_mb": last.rss_collected_mb - first.rss_before_mb,
        "python_blocks_per_session": (last.python_blocks - first.python_blocks) / steps,
        "gc_objects_per_session": (last.gc_objects - first.gc_objects) / steps,
        "live_sessions_after_close_max": max(r.live_sessions_closed for r in results),
        "caps": {
            "input_buffer_s": MAX_BUFFER_S,
            "created_items_chars": MAX_CREATED_ITEMS_CHARS,
            "outbox_bytes": OUTBOX_LIMIT_BYTES,
        },
        "session_details": [asdict(r) for r in results],
    }


def table(summary: dict[str, Any]) -> str:
    def mb(value: float | None) -> str:
        return f"{value:.0f}" if value is not None else "-"

    lines = [
        "| session | RSS before | full (size) | closed, no gc | after gc.collect() | after malloc_trim | "
        "live sessions after close: no gc / gc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["session_details"]:
        lines.append(
            f"| {r['index']} | {mb(r['rss_before_mb'])} | {mb(r['rss_open_mb'])} "
            f"(+{r['rss_open_mb'] - r['rss_before_mb']:.0f}) | {mb(r['rss_closed_mb'])} | "
            f"{mb(r['rss_collected_mb'])} | {mb(r['rss_trimmed_mb'])} | "
            f"{r['live_sessions_closed']} / {r['live_sessions_collected']} |"
        )

    def growth(key: str) -> str:
        value = summary[key]
        return f"{value:+.1f} MB" if value is not None else "-"

    lines += [
        "",
        "| growth per session, first to last (MB, RSS) | |",
        "|---|---|",
        f"| after close, no gc | {growth('growth_per_session_closed_mb')} |",
        f"| after gc.collect() | {growth('growth_per_session_collected_mb')} |",
        f"| after malloc_trim(0) | {growth('growth_per_session_trimmed_mb')} |",
        f"| Python's allocated blocks (after gc) | {summary['python_blocks_per_session']:+.0f} |",
        f"| objects tracked by the GC (after gc) | {summary['gc_objects_per_session']:+.0f} |",
    ]
    return "\n".join(lines)


async def run_memory_bench(
    *,
    out_dir: Path | None,
    sessions: int = DEFAULT_SESSIONS,
    speech: Speech = spoken_turn,
    buffer_s: float = BUFFER_S,
    items_chars: int = MAX_CREATED_ITEMS_CHARS,
) -> int:
    """The ``bench soak --memory`` command: ``sessions`` big sessions in turn on a server started here."""
    audio = speech()
    print(
        f"bench soak --memory: {sessions} sessions in turn, each filled ({audio.size / WIRE_RATE_HZ:.0f} s spoken "
        f"turn answered, {items_chars // 2**20} MiB of items, {buffer_s:.0f} s of buffered audio, a full "
        f"outbox) then closed; the cyclic GC is off from each connect to the measurements after its close",
        flush=True,
    )
    async with server_target(None, REALTIME_PATH, api_key=None) as target:
        results = await measure_sessions(target, sessions, speech=audio, buffer_s=buffer_s, items_chars=items_chars)
        info = target.machine()
    summary = {"machine": info, **summarize(results)}
    text = table(summary)
    print(text)
    if out_dir is not None:
        write_results(out_dir, "soak-memory", summary, text)
    return 0
