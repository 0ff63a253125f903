"""Transcription sessions (``/v1/realtime?intent=transcription``, reference section 7), sans-I/O.

Feed it client events with :meth:`TranscriptionSession.receive` and engine results with
:meth:`~TranscriptionSession.on_result`; drain what it produced with :meth:`~TranscriptionSession.drain`:
server events to send and commands for the runtime. It never awaits and never reads a clock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from openrealtime.contracts import NoiseSuppressor, VadModel
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.protocol import server_events as se
from openrealtime.protocol.codec import validation_error
from openrealtime.protocol.config import TranscriptionSessionConfig, merge_update
from openrealtime.session.commands import JobFailed, TranscriptReady
from openrealtime.session.ids import Ids
from openrealtime.session.input_buffer import CommittedAudio, InputAudioBuffer

MAX_APPEND_BYTES = 15 * 1024 * 1024  # OpenAI's per-append limit ("15 MiB" in the SDK)
SESSION_LIFETIME_S = 3600


@dataclass(frozen=True)
class SessionInfo:
    """What the runtime knows at connect: ids, clock, and which transcription models it accepts."""

    session_id: str
    created_at_s: int
    accepts_model: Callable[[str], bool]
    lifetime_s: int = SESSION_LIFETIME_S


def decode_base64_audio(data: str, *, event_id: str | None) -> bytes:
    """Strict base64 for ``audio`` fields; bad input is ``invalid_value`` on ``audio``."""
    if len(data) * 3 // 4 > MAX_APPEND_BYTES:
        raise ProtocolError(
            f"Audio content too large: an append may carry at most {MAX_APPEND_BYTES} bytes "
            f"(15 MiB), this one carries about {len(data) * 3 // 4}.",
            code="input_audio_buffer_append_too_large",
            param="audio",
            event_id=event_id,
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(
            "Invalid 'audio': the value is not valid base64.",
            code="invalid_value",
            param="audio",
            event_id=event_id,
        ) from None


class TranscriptionSession:
    """One transcription session's protocol state."""

    def __init__(
        self,
        info: SessionInfo,
        *,
        vad: VadModel,
        noise: NoiseSuppressor | None = None,
        ids: Ids | None = None,
    ) -> None:
        self.info = info
        self._ids = ids or Ids()
        self.config = TranscriptionSessionConfig()
        self._events: list[se.ServerEvent] = []
        self._commands: list[object] = []
        self._items: dict[str, dict[str, Any]] = {}
        self.buffer = InputAudioBuffer(
            vad=vad,
            ids=self._ids,
            config=self.config.audio.input,
            events=self._events,
            commands=self._commands,
            on_committed=self._on_committed,
            noise=noise,
        )
        self._events.append(se.SessionCreated(session=self.effective_session()))

    def effective_session(self) -> dict[str, Any]:
        session = self.config.model_dump(mode="json", exclude={"object", "id", "expires_at"})
        transcription = session["audio"]["input"]["transcription"]
        if transcription is not None:
            transcription.pop("delay", None) if transcription.get("delay") is None else None
            transcription.pop("keywords", None) if transcription.get("keywords") is None else None
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.info.session_id,
            "expires_at": self.info.created_at_s + self.info.lifetime_s,
            **{k: v for k, v in session.items() if k != "type"},
        }

    # --- inputs ------------------------------------------------------------------------------------

    def receive(self, event: ce.ClientEvent) -> None:
        """Handle one parsed client event; a client error becomes an ``error`` event, state unchanged."""
        try:
            self._dispatch(event)
        except ProtocolError as exc:
            self.error(exc, event.event_id)

    def error(self, exc: ProtocolError, event_id: str | None = None) -> None:
        self._events.append(se.Error.of(exc, event_id))

    def on_result(self, result: TranscriptReady | JobFailed) -> None:
        self.buffer.on_result(result)

    def drain(self) -> tuple[list[se.ServerEvent], list[object]]:
        events, commands = list(self._events), list(self._commands)
        self._events.clear()
        self._commands.clear()
        return events, commands

    # --- client events -----------------------------------------------------------------------------

    def _dispatch(self, event: ce.ClientEvent) -> None:
        match event:
            case ce.InputAudioBufferAppend():
                self.buffer.append(decode_base64_audio(event.audio, event_id=event.event_id), event_id=event.event_id)
            case ce.InputAudioBufferCommit():
                self.buffer.commit(event_id=event.event_id)
            case ce.InputAudioBufferClear():
                self.buffer.clear()
            case ce.SessionUpdate():
                self._update(event)
            case ce.ConversationItemRetrieve():
                item = self._items.get(event.item_id)
                if item is None:
                    raise ProtocolError(
                        f"Error retrieving item: the item with id '{event.item_id}' does not exist.",
                        code="item_retrieve_invalid_item_id",
                        param="item_id",
                        event_id=event.event_id,
                    )
                self._events.append(se.ItemRetrieved(item=self._item_with_transcript(event.item_id)))
            case ce.ConversationItemDelete():
                if self._items.pop(event.item_id, None) is None:
                    raise ProtocolError(
                        f"Error deleting item: the item with id '{event.item_id}' does not exist.",
                        code="item_delete_invalid_item_id",
                        param="item_id",
                        event_id=event.event_id,
                    )
                self._events.append(se.ItemDeleted(item_id=event.item_id))
            case _:
                raise ProtocolError(
                    f"Invalid value: '{getattr(event, 'type', '?')}'. This event is not supported in "
                    "transcription sessions.",
                    code="invalid_value",
                    param="type",
                    event_id=event.event_id,
                )

    def _update(self, event: ce.SessionUpdate) -> None:
        if not isinstance(event.session, TranscriptionSessionConfig):
            raise ProtocolError(
                "Invalid value: 'realtime'. This is a transcription session: session.type must be 'transcription'.",
                code="invalid_value",
                param="session.type",
                event_id=event.event_id,
            )
        update = event.session.model_dump(mode="json", exclude_unset=True, exclude={"object", "id", "expires_at"})
        merged = merge_update(self.config.model_dump(mode="json"), update)
        try:
            config = TranscriptionSessionConfig.model_validate(merged)
        except ValidationError as exc:  # a merge can still be invalid (e.g. strength without type)
            raise validation_error(exc, event.event_id) from None
        transcription = config.audio.input.transcription
        model = transcription.model if transcription is not None else None
        if model is not None and not self.info.accepts_model(model):
            raise ProtocolError(
                f"Invalid value: '{model}'. This server has no transcription model "
                "of that name; use an OpenAI name (e.g. 'gpt-4o-transcribe') or a configured engine.",
                code="invalid_value",
                param="session.audio.input.transcription.model",
                event_id=event.event_id,
            )
        self.config = config
        self.buffer.configure(config.audio.input)
        self._events.append(se.SessionUpdated(session=self.effective_session()))

    # --- callbacks from the buffer -----------------------------------------------------------------

    def _on_committed(self, committed: CommittedAudio) -> None:
        self.buffer.last_commit_audio = None  # transcription sessions do not keep item audio
        item = {
            "id": committed.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._items[committed.item_id] = item
        self._events.append(se.ItemAdded(previous_item_id=committed.previous_item_id, item=item))
        self._events.append(se.ItemDone(previous_item_id=committed.previous_item_id, item=item))

    def _item_with_transcript(self, item_id: str) -> dict[str, Any]:
        item = dict(self._items[item_id])
        transcript = self.buffer.completed_transcripts.get(item_id)
        item["content"] = [{"type": "input_audio", "transcript": transcript}]
        return item
