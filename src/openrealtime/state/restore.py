"""Put a stored session's conversation back into a new sans-I/O session, without a single event: the
client that resumes already has these items, so none is sent twice.

An item that was still being answered when the connection was lost (``in_progress``) comes back
``incomplete``, with the text its client had been sent; a user turn whose transcription had not
finished comes back without a transcript. The user turns' audio kept by the store is retrievable
again.
"""

from __future__ import annotations

from typing import Any

from openrealtime.session.conversation import Conversation, Entry, SpokenClause
from openrealtime.state.records import ItemRecord, SessionState

CUT_OFF = "incomplete"


def restored_item(record: ItemRecord) -> dict[str, Any]:
    """The item as the resumed session holds it: an unfinished one ends ``incomplete``."""
    item = dict(record.item)
    if item.get("status") == "in_progress":
        item["status"] = CUT_OFF
    return item


def restore_into(session: Any, state: SessionState) -> None:
    """Add ``state``'s items (in order) and their kept audio to ``session``'s conversation, quietly."""
    conversation = getattr(session, "conversation", None)
    if not isinstance(conversation, Conversation):
        return
    conversation_id = state.meta.conversation_id
    if conversation_id:
        session.conversation_id = conversation_id
        writer = getattr(session, "writer", None)
        if writer is not None:
            writer.conversation_id = conversation_id
    recent = getattr(session, "_recent_audio", None)
    for record in state.ordered():
        clauses = [SpokenClause(text, start, end) for text, start, end in record.clauses]
        entry = Entry(restored_item(record), audio_ms=record.audio_ms, clauses=clauses, heard_text=record.heard_text)
        conversation.add(entry)
        audio = state.audio.get(entry.id)
        if recent is not None and audio is not None:
            recent.keep(entry.id, audio)
