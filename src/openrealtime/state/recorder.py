"""Write a live session's durable state to the store as it changes, by following its server events.

The recorder reads nothing of the session's workings: what changed is what the session told its
client (``session.created``/``.updated``: the config; ``conversation.item.added``/``.done``/
``.truncated``/``.deleted`` and the input transcription's end: an item; an answer's text and
transcript deltas: the item being answered, with the text sent so far). :meth:`Recorder.observe` runs
on each event and only marks what changed; a task of its own writes the changes between the session
loop's steps, one write for however many events came meanwhile, reading each changed item from the
conversation as it stands then (a few dozen items per turn of the event loop). So a response cut off
by a lost connection is stored with the text its client was sent, and is ended as ``incomplete`` when
the session is resumed (:func:`~openrealtime.state.restore.restore_into`).

The last write, when the connection ends, keeps the session for the grace window; a session that
stays connected has its state's expiry moved on at least every half grace window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from openrealtime.protocol import server_events as se
from openrealtime.session.conversation import Conversation, Entry
from openrealtime.state.records import ItemRecord, Meta, StateChange, dump_order, samples_pcm16
from openrealtime.state.store import StateStore

log = logging.getLogger(__name__)

# Events after which an item (named by ``item_id`` or by its ``item``) is rewritten.
_ITEM_CHANGES = (
    se.ItemDone,
    se.ItemTruncated,
    se.TranscriptionCompleted,
    se.TranscriptionFailed,
    se.OutputItemDone,
)
WRITE_TIMEOUT_S = 5.0  # a store that does not answer in this long fails the write (logged); the session goes on
# At most one write this often: each write reads the conversation's order whole, and a burst of 2,000
# items wrote after nearly every step of the session loop (O(n^2), 1.5 s of the event loop in 15 s of
# bursts, issue 10). A process killed outright loses at most this much; a closing connection loses nothing.
WRITE_INTERVAL_S = 0.05
# Items read and dumped per turn of the event loop (about 1 ms): one write after a burst reads hundreds
# of items, and read at once they held the loop 15-50 ms (``/healthz`` waited behind them, issue 10).
ITEMS_PER_STEP = 32
_PARTIALS = (se.OutputAudioTranscriptDelta, se.OutputTextDelta)


class Recorder:
    """Keeps one session's state in ``store`` while its connection lasts.

    Args:
        session: The sans-I/O session (its ``conversation``, when it has one, is read at each write).
        kind: The session's kind (``realtime``, ``transcription``, ``translation``).
        store: Where the state goes.
        ttl_s: How long the state outlives its last write: the resume grace window.
        saved_audio: Items whose audio the store holds already (a resumed session's).
    """

    def __init__(
        self,
        session: Any,
        kind: str,
        store: StateStore,
        ttl_s: float,
        *,
        saved_audio: set[str] | None = None,
    ) -> None:
        self._session = session
        self._kind = kind
        self._store = store
        self._ttl_s = ttl_s
        self.session_id: str = session.info.session_id
        self._config: dict[str, Any] | None = None
        self._meta_dirty = False
        self._order_dirty = False
        self._items: set[str] = set()
        self._removed: set[str] = set()
        self._partial: dict[str, str] = {}  # text sent so far of items still being answered
        self._saved_audio = set(saved_audio or ())
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.writes = 0
        self.failures = 0

    @property
    def _conversation(self) -> Conversation | None:
        conversation = getattr(self._session, "conversation", None)
        return conversation if isinstance(conversation, Conversation) else None

    def observe(self, event: se.ServerEvent) -> None:
        """Mark what ``event`` changed (cheap: the write happens later, in :meth:`commit`)."""
        if isinstance(event, se.SessionCreated | se.SessionUpdated):
            self._config = dict(event.session)
            self._meta_dirty = True
        elif isinstance(event, se.ItemAdded):
            self._mark(str(event.item.get("id")))
            self._order_dirty = True
        elif isinstance(event, _PARTIALS):
            self._partial[event.item_id] = self._partial.get(event.item_id, "") + event.delta
            self._mark(event.item_id)
        elif isinstance(event, _ITEM_CHANGES):
            item_id = getattr(event, "item_id", None) or event.item.get("id")  # type: ignore[union-attr]
            self._mark(str(item_id))
        elif isinstance(event, se.ItemDeleted):
            self._items.discard(event.item_id)
            self._partial.pop(event.item_id, None)
            self._removed.add(event.item_id)
            self._order_dirty = True
        else:
            return
        self._dirty.set()

    def _mark(self, item_id: str) -> None:
        self._items.add(item_id)
        self._removed.discard(item_id)

    def change(self) -> StateChange:
        """What changed since the last write, read from the session now; the marks are cleared."""
        change, items = self._take_marks()
        for item_id in items:
            self._read_item(change, item_id)
        return change

    async def _change_in_steps(self) -> StateChange:
        """:meth:`change`, reading ``ITEMS_PER_STEP`` items per turn of the event loop."""
        change, items = self._take_marks()
        for count, item_id in enumerate(items, 1):
            self._read_item(change, item_id)
            if count % ITEMS_PER_STEP == 0:
                await asyncio.sleep(0)
        return change

    def _take_marks(self) -> tuple[StateChange, list[str]]:
        """The change's metadata, order and removals, and the items to read into it; marks cleared."""
        change = StateChange()
        if self._meta_dirty and self._config is not None:
            conversation_id = getattr(self._session, "conversation_id", None)
            change.meta = Meta(self._kind, self._config, conversation_id).dumps()
            self._meta_dirty = False
        conversation = self._conversation
        if conversation is not None and self._order_dirty:
            change.order = dump_order([entry.id for entry in conversation])
        self._order_dirty = False
        items = list(self._items) if conversation is not None else []
        self._items.clear()
        change.removed = sorted(self._removed)
        self._saved_audio.difference_update(self._removed)
        self._removed.clear()
        return change, items

    def _read_item(self, change: StateChange, item_id: str) -> None:
        """``item_id`` as the conversation holds it now, into ``change`` (gone meanwhile: nothing)."""
        conversation = self._conversation
        entry = conversation.get(item_id) if conversation is not None else None
        if entry is None:
            return
        change.items[item_id] = self._record(entry).dumps()
        audio = self._audio(item_id)
        if audio is not None:
            change.audio[item_id] = audio

    def _record(self, entry: Entry) -> ItemRecord:
        item = entry.item
        partial = self._partial.get(entry.id)
        if item.get("status") == "in_progress" and partial is not None:
            item = _with_partial(item, partial)
        elif partial is not None:
            del self._partial[entry.id]  # the item is done: its own content holds the text now
        clauses = tuple((c.text, c.start_ms, c.end_ms) for c in entry.clauses)
        return ItemRecord(item, entry.audio_ms, clauses, entry.heard_text)

    def _audio(self, item_id: str) -> bytes | None:
        """The user turn's audio, once, while the session still keeps it."""
        if item_id in self._saved_audio:
            return None
        recent = getattr(self._session, "_recent_audio", None)
        samples = recent.samples(item_id) if recent is not None else None
        if samples is None:
            return None
        self._saved_audio.add(item_id)
        return samples_pcm16(samples)

    async def commit(self) -> None:
        """Write what changed (an empty change extends the state's life); a store failure is logged
        and counted, and the session goes on."""
        change = await self._change_in_steps()
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._store.save(self.session_id, change, self._ttl_s)
            self.writes += 1
        except Exception:
            self.failures += 1
            log.exception("state store write for %s failed", self.session_id)

    def start(self) -> None:
        """Write changes from now on, in a task of the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop, after the last write (the one that keeps the state for the grace window).

        The writer is told to stop, not cancelled: a write under way finishes (a cancelled one could
        leave half a change in the store), and Python 3.11's ``wait_for`` could swallow the cancel."""
        self._closing = True
        self._stopping.set()
        self._dirty.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.commit()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ttl_s / 2):
                    await self._dirty.wait()
            self._dirty.clear()
            if not self._closing:
                await self.commit()
                with contextlib.suppress(TimeoutError):  # the next write waits, unless the session closes
                    async with asyncio.timeout(WRITE_INTERVAL_S):
                        await self._stopping.wait()


def _with_partial(item: dict[str, Any], text: str) -> dict[str, Any]:
    """An answer's item with the text sent so far in its content."""
    content = [dict(part) for part in item.get("content") or []]
    for part in content:
        if part.get("type") == "output_audio":
            part["transcript"] = text
        elif part.get("type") == "output_text":
            part["text"] = text
    return {**item, "content": content}
