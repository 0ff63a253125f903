"""The assistant client's copy of the conversation: items in order, what each one says, transcript
lines in turn order, and the ``conversation.item.create`` events that rebuild it in a new session.

Items are ordered by the ``previous_item_id`` of ``conversation.item.added`` (reference 5.3), not by
when their text arrives: the user's transcript (``...input_audio_transcription.completed``) may land
after the assistant has started answering (reference 6.2, rule 3). A line is *ready* once its item is
final and every item before it is final, so lines always come out in turn order.

Rebuilding follows what a new session accepts (reference 4): user audio becomes ``input_text`` with
its transcript, assistant audio becomes ``output_text`` with what is left of its transcript after a
truncation, function calls and their outputs are replayed as they are.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import UnknownServerEvent

INTERRUPTED_MARK = " …"


@dataclass
class HistoryItem:
    """One conversation item as the client knows it.

    Attributes:
        id: The item id (kept across a rebuild).
        type: ``message``, ``function_call`` or ``function_call_output``.
        role: ``user``, ``assistant`` or ``system`` for messages.
        text: Text or transcript; for a function call its arguments, for an output the output.
        partial: Transcript deltas of a user turn whose final transcript has not arrived.
        final: No more text will come (the line can be printed).
        interrupted: The assistant was cut off (barge-in or cancel).
        held: Kept from being final until the server's copy is fetched again (after a truncation,
            its transcript shrinks to what was heard).
        name: Function name (function calls).
        call_id: Call id (function calls and outputs).
    """

    id: str
    type: str
    role: str | None = None
    text: str = ""
    partial: str = ""
    final: bool = False
    interrupted: bool = False
    held: bool = False
    name: str | None = None
    call_id: str | None = None

    @property
    def line(self) -> str:
        """How a transcript shows this item."""
        if self.type == "function_call":
            return f"{self.name}({self.text})"
        if self.type == "function_call_output":
            return self.text
        return self.text + (INTERRUPTED_MARK if self.interrupted else "")


def _content_text(item: dict[str, Any]) -> tuple[str | None, bool]:
    """The text of a message item, and whether it is still waiting for a user-audio transcript."""
    texts: list[str] = []
    waiting = False
    for part in item.get("content") or []:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            texts.append(part.get("text") or "")
        elif kind in ("input_audio", "output_audio", "audio"):
            transcript = part.get("transcript")
            if transcript is None:
                waiting = waiting or kind == "input_audio"
            else:
                texts.append(transcript)
    if not texts:
        return None, waiting
    return " ".join(t for t in texts if t), waiting


class ConversationHistory:
    """Folds server events into the ordered conversation."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, HistoryItem] = {}
        self._reported: set[str] = set()

    # --- folding events ----------------------------------------------------------------------------

    def feed(self, event: se.ServerEvent | UnknownServerEvent) -> None:
        """Apply one server event (others are ignored)."""
        match event:
            case se.ItemAdded() | se.ItemDone():
                placed = "previous_item_id" in event.model_fields_set  # sent, even as null
                self._upsert(event.item, event.previous_item_id, placed=placed)
            case UnknownServerEvent(type="conversation.item.created"):  # the beta name of ``added``
                fields = event.model_extra or {}
                if isinstance(item := fields.get("item"), dict):
                    self._upsert(item, fields.get("previous_item_id"), placed="previous_item_id" in fields)
            case se.ItemRetrieved():
                if (held := self._items.get(event.item.get("id", ""))) is not None:
                    held.held = False
                self._upsert(event.item, None, placed=False)
            case se.ItemDeleted():
                self.remove(event.item_id)
            case se.TranscriptionDelta():
                item = self._get(event.item_id, "message", "user")
                if not item.final:
                    item.partial += event.delta
            case se.TranscriptionCompleted():
                item = self._get(event.item_id, "message", "user")
                item.text, item.partial, item.final = event.transcript, "", True
            case se.TranscriptionFailed():
                self._get(event.item_id, "message", "user").final = True
            case se.OutputAudioTranscriptDelta() | se.OutputTextDelta():
                item = self._get(event.item_id, "message", "assistant")
                if not item.final:
                    item.text += event.delta
            case se.OutputAudioTranscriptDone():
                item = self._get(event.item_id, "message", "assistant")
                item.text, item.final = event.transcript, not item.held
            case se.OutputTextDone():
                item = self._get(event.item_id, "message", "assistant")
                item.text, item.final = event.text, not item.held
            case se.FunctionCallArgumentsDone():
                item = self._get(event.item_id, "function_call", None)
                item.text, item.final = event.arguments, True
                item.name, item.call_id = event.name, event.call_id
            case se.ItemTruncated():
                if (cut_item := self._items.get(event.item_id)) is not None:
                    cut_item.interrupted = True
            case se.ResponseDone():
                cut = event.response.get("status") in ("cancelled", "incomplete", "failed")
                for output in event.response.get("output") or []:
                    done = self._items.get(output.get("id", ""))
                    if done is not None and done.type == "message":
                        done.final = not done.held
                        done.interrupted = done.interrupted or cut

    def _get(self, item_id: str, kind: str, role: str | None) -> HistoryItem:
        item = self._items.get(item_id)
        if item is None:  # text before the item was announced: placed when its ``added`` arrives
            item = HistoryItem(id=item_id, type=kind, role=role)
            self._items[item_id] = item
        return item

    def _place(self, item_id: str, previous: str | None) -> None:
        if item_id in self._order:
            return
        if previous is None:
            self._order.insert(0, item_id)  # ``previous_item_id: null``: first in the conversation
        elif previous in self._order:
            self._order.insert(self._order.index(previous) + 1, item_id)
        else:
            self._order.append(item_id)

    def _upsert(self, raw: dict[str, Any], previous: str | None, *, placed: bool) -> None:
        item_id = raw.get("id")
        if not item_id:
            return
        kind = raw.get("type", "message")
        item = self._get(item_id, kind, raw.get("role"))
        item.type, item.role = kind, raw.get("role", item.role)
        if placed:
            self._place(item_id, previous)
        elif item_id not in self._order:
            self._order.append(item_id)
        if kind == "message":
            text, waiting = _content_text(raw)
            if text is not None and (text or not item.text or item.role != "user"):
                item.text = text
            if item.role == "user":
                item.final = item.final or not waiting
            elif item.role == "system" or raw.get("status") in ("completed", "incomplete"):
                item.final = not item.held
        elif kind == "function_call":
            item.name, item.call_id = raw.get("name"), raw.get("call_id")
            item.text = raw.get("arguments") or item.text
            item.final = item.final or raw.get("status") in ("completed", "incomplete")
        elif kind == "function_call_output":
            item.call_id, item.text, item.final = raw.get("call_id"), raw.get("output") or "", True
        else:
            item.final = True  # items the client does not show (MCP, ...) hold nothing back

    # --- reading -----------------------------------------------------------------------------------

    def hold(self, item_id: str) -> None:
        """Keep ``item_id`` from being final until a ``conversation.item.retrieved`` (or :meth:`release`)."""
        item = self._items.get(item_id)
        if item is not None:
            item.held, item.final = True, False

    def release(self, item_id: str) -> None:
        """Undo :meth:`hold` (the refresh will not come)."""
        item = self._items.get(item_id)
        if item is not None and item.held:
            item.held, item.final = False, True

    def remove(self, item_id: str) -> None:
        """Forget an item (deleted, or never to be finished)."""
        self._items.pop(item_id, None)
        if item_id in self._order:
            self._order.remove(item_id)

    def get(self, item_id: str) -> HistoryItem | None:
        """The item ``item_id``, if known."""
        return self._items.get(item_id)

    def items(self) -> list[HistoryItem]:
        """The placed items, in conversation order."""
        return [self._items[i] for i in self._order]

    def all_final(self) -> bool:
        """Whether every placed item is final (nothing is still being said or transcribed)."""
        return all(self._items[i].final for i in self._order)

    def ready(self) -> list[HistoryItem]:
        """Items that just became printable: final, with every earlier item final too."""
        out: list[HistoryItem] = []
        for item_id in self._order:
            item = self._items[item_id]
            if not item.final:
                break
            if item_id not in self._reported:
                self._reported.add(item_id)
                out.append(item)
        return out

    def pending(self) -> HistoryItem | None:
        """The first item not final yet (what a live display shows in progress)."""
        for item_id in self._order:
            if not self._items[item_id].final:
                return self._items[item_id]
        return None

    # --- rebuilding --------------------------------------------------------------------------------

    def replay_events(self) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that rebuild this conversation in a new session.

        Items with nothing to say (an untranscribed turn, an assistant item cut before any word),
        unfinished function calls, and outputs whose call is not replayed are left out, so that every
        event is one the new session accepts.
        """
        events: list[dict[str, Any]] = []
        replayed_calls: set[str] = set()
        for item in self.items():
            body: dict[str, Any] | None = None
            if item.type == "message" and item.final and item.text.strip():
                if item.role == "assistant":
                    content = [{"type": "output_text", "text": item.text}]
                else:
                    content = [{"type": "input_text", "text": item.text}]
                body = {"type": "message", "role": item.role or "user", "content": content}
            elif item.type == "function_call" and item.final and item.call_id and item.name:
                replayed_calls.add(item.call_id)
                body = {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.text or "{}",
                }
            elif item.type == "function_call_output" and item.call_id in replayed_calls:
                body = {"type": "function_call_output", "call_id": item.call_id, "output": item.text}
            if body is not None:
                events.append({"type": "conversation.item.create", "item": {"id": item.id, **body}})
        return events


class TranscriptPrinter:
    """Prints a conversation's lines in turn order as they become final (``you:`` / ``assistant:``).

    On a terminal, the line in progress (the user's words while transcribed, the assistant's while
    spoken) is shown and rewritten in place until it is final.

    Args:
        history: The conversation to follow; call :meth:`update` after each event.
        stream: Where to print (``sys.stdout`` by default).
    """

    LABELS: ClassVar[dict[str, str]] = {"user": "you", "assistant": "assistant", "system": "system"}

    def __init__(self, history: ConversationHistory, stream: Any = None) -> None:
        self.history = history
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._partial_shown = False

    def label(self, item: HistoryItem) -> str:
        """Who says ``item``: ``you``, ``assistant``, ``tool call``, ..."""
        if item.type == "function_call":
            return "tool call"
        if item.type == "function_call_output":
            return "tool result"
        return self.LABELS.get(item.role or "", item.role or "?")

    def __call__(self, event: dict[str, Any], at_s: float) -> None:
        """An ``on_event`` hook of the assistant: print after each event."""
        self.update()

    def update(self) -> None:
        """Print what became final since the last call (and, on a TTY, the line in progress)."""
        clear = "\r\x1b[2K" if self.tty and self._partial_shown else ""
        for item in self.history.ready():
            if item.type == "message" and not item.text.strip():
                continue
            self.stream.write(f"{clear}{self.label(item)}: {item.line}\n")
            clear, self._partial_shown = "", False
        pending = self.history.pending()
        if self.tty and pending is not None and pending.type == "message":
            text = pending.partial or pending.text
            if text:
                self.stream.write(f"\r\x1b[2K{self.label(pending)}: {text[-150:]} …")
                self._partial_shown = True
        self.stream.flush()
