"""Transcription sessions (``/v1/realtime?intent=transcription``, reference section 7), sans-I/O.

Feed it client events with :meth:`TranscriptionSession.receive` and engine results with
:meth:`~TranscriptionSession.on_result`; drain what it produced with :meth:`~TranscriptionSession.drain`:
server events to send and commands for the runtime. It never awaits and never reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Unpack

from openrealtime.audio.codec import AudioFormat
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.config import TranscriptionSessionConfig
from openrealtime.session.commands import EngineResult, JobFailed, SessionInput, TranscriptReady, TurnEndPredicted
from openrealtime.session.conversation import no_such_item
from openrealtime.session.input_buffer import InputAudioBuffer
from openrealtime.session.items import RecentAudio, user_audio_item
from openrealtime.session.logprobs import wants_logprobs
from openrealtime.session.shell import SessionEngines, SessionShell, session_body, session_update
from openrealtime.session.signals import Signal, TranscriptFinal, TurnCommitted

SESSION_LIFETIME_S = 3600


@dataclass(frozen=True)
class SessionInfo:
    """What the runtime knows at connect: ids, clock, and which transcription models it accepts."""

    session_id: str
    created_at_s: int
    accepts_model: Callable[[str], bool]
    lifetime_s: int = SESSION_LIFETIME_S


class TranscriptionSession(SessionShell):
    """One transcription session's protocol state."""

    def __init__(self, info: SessionInfo, **engines: Unpack[SessionEngines]) -> None:
        super().__init__(**engines)
        self.info = info
        self.config = TranscriptionSessionConfig()
        self._items: dict[str, dict[str, Any]] = {}
        self._recent_audio = RecentAudio()  # committed turns' audio, for conversation.item.retrieve
        self._transcripts: dict[str, str] = {}
        self._last_item: str | None = None
        self.buffer = InputAudioBuffer(self.config.audio.input, vad=self._vad, ids=self._ids, noise=self._noise)
        self._events.append(se.SessionCreated(session=self.effective_session()))

    def effective_session(self) -> dict[str, Any]:
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.info.session_id,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
            **session_body(self.config, exclude={"object", "id", "expires_at"}),
        }

    def on_result(self, result: EngineResult) -> None:
        if isinstance(result, TranscriptReady | JobFailed | TurnEndPredicted):
            self._take(self.buffer.on_result(result))

    # --- client events -----------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        return self.buffer.input_format

    def _dispatch(self, event: SessionInput) -> None:
        buffered = self.buffer.receive(event)
        if buffered is not None:
            self._take(buffered)
            return
        match event:
            case ce.SessionUpdate():
                self._update(event)
            case ce.ConversationItemRetrieve():
                self._item(event.item_id, "retrieving", "item_retrieve_invalid_item_id", event.event_id)
                audio = self._recent_audio.retrieved(event.item_id, self.buffer.input_format)
                self._events.append(se.ItemRetrieved(item=self._item_with_transcript(event.item_id), audio=audio))
            case ce.ConversationItemDelete():
                self._item(event.item_id, "deleting", "item_delete_invalid_item_id", event.event_id)
                del self._items[event.item_id]
                self._recent_audio.forget(event.item_id)
                self._events.append(se.ItemDeleted(item_id=event.item_id))
            case _:
                raise ProtocolError(
                    f"Invalid value: '{getattr(event, 'type', '?')}'. This event is not supported in "
                    "transcription sessions.",
                    code="invalid_value",
                    param="type",
                    event_id=event.event_id,
                )

    def _item(self, item_id: str, verb: str, code: str, event_id: str | None) -> dict[str, Any]:
        item = self._items.get(item_id)
        if item is None:
            raise no_such_item(item_id, verb, code, event_id)
        return item

    def _update(self, event: ce.SessionUpdate) -> None:
        self.config = session_update(
            self.config, event, accepts_model=self.info.accepts_model, exclude={"object", "id", "expires_at"}
        )
        self.buffer.configure(self.config.audio.input, logprobs=wants_logprobs(self.config.include))
        self._events.append(se.SessionUpdated(session=self.effective_session()))

    # --- signals from the buffer -------------------------------------------------------------------

    def _on_signal(self, signal: Signal) -> None:
        if isinstance(signal, TurnCommitted):
            item = user_audio_item(signal.item_id)
            previous, self._last_item = self._last_item, signal.item_id
            self._items[signal.item_id] = item
            self._recent_audio.keep(signal.item_id, signal.audio)
            self._events.append(se.Committed(previous_item_id=previous, item_id=signal.item_id))
            self._events.append(se.ItemAdded(previous_item_id=previous, item=item))
            self._events.append(se.ItemDone(previous_item_id=previous, item=item))
        elif isinstance(signal, TranscriptFinal) and signal.text is not None:
            self._transcripts[signal.item_id] = signal.text

    def _item_with_transcript(self, item_id: str) -> dict[str, Any]:
        item = dict(self._items[item_id])
        item["content"] = [{"type": "input_audio", "transcript": self._transcripts.get(item_id)}]
        return item
