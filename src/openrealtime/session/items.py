"""Conversation items as the sessions make them: the user's audio turns, and items a client creates.

A committed turn becomes a user ``message`` with one ``input_audio`` part whose transcript is ``null``
until its final decode (reference 6.2; the text arrives in ``...transcription.completed``). An item a
client creates (``conversation.item.create``) is checked the way OpenAI checks it and completed with
the fields the server fills in; audio it carries without a transcript is transcribed, so the model
hears it like a spoken turn.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from openrealtime.audio.codec import AudioFormat, AudioOut
from openrealtime.audio.resample import StreamResampler
from openrealtime.audio.types import Samples
from openrealtime.contracts import TranscribeOptions
from openrealtime.exceptions import ProtocolError
from openrealtime.protocol import client_events as ce
from openrealtime.session.commands import AudioIn, Transcribe
from openrealtime.session.conversation import Entry
from openrealtime.session.frontend import ENGINE_RATE_HZ
from openrealtime.session.ids import Ids

# conversation.item.retrieve returns a spoken turn's audio for a session's last this-many seconds of
# spoken turns (16 kHz float32: 3.8 MB a session); older turns come back with their transcript only.
RETRIEVABLE_AUDIO_S = 60


class RecentAudio:
    """The audio of a session's last spoken turns, for ``conversation.item.retrieve`` (OpenAI returns
    it): at most ``RETRIEVABLE_AUDIO_S`` in all, the oldest turns' audio forgotten first (they keep
    their transcript)."""

    def __init__(self) -> None:
        self._audio: OrderedDict[str, Samples] = OrderedDict()
        self._samples = 0

    def keep(self, item_id: str, audio: Samples) -> None:
        self._audio[item_id] = audio
        self._samples += audio.size
        while self._samples > RETRIEVABLE_AUDIO_S * ENGINE_RATE_HZ:
            _, dropped = self._audio.popitem(last=False)
            self._samples -= dropped.size

    def samples(self, item_id: str) -> Samples | None:
        """The turn's audio at 16 kHz, if it is still kept."""
        return self._audio.get(item_id)

    def forget(self, item_id: str) -> None:
        audio = self._audio.pop(item_id, None)
        if audio is not None:
            self._samples -= audio.size

    def retrieved(self, item_id: str, fmt: AudioFormat) -> AudioOut | None:
        """The turn's audio in the session's input format, if it is still kept."""
        audio = self._audio.get(item_id)
        if audio is None:
            return None
        return AudioOut(StreamResampler(ENGINE_RATE_HZ, fmt.rate_hz).process(audio, last=True), fmt)


def user_audio_item(item_id: str) -> dict[str, Any]:
    """The item of a committed turn, as ``conversation.item.added`` / ``.done`` send it."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }


def created_item(event: ce.ConversationItemCreate, ids: Ids, *, sees_images: bool = False) -> tuple[Entry, bool]:
    """The entry ``event`` adds, and whether it carries audio to transcribe.

    Raises:
        ProtocolError: Assistant audio, an assistant message with other than ``output_text``, or an
            image for a model that cannot see (``sees_images``).
    """
    item = event.item.model_dump(mode="json", exclude_none=True)
    item["id"] = item.get("id") or ids.new("item")
    if item["type"] != "mcp_approval_response":  # OpenAI's MCP items have neither
        item["object"] = "realtime.item"
        item["status"] = "completed"
    untranscribed_audio = False
    for part in item["content"] if item["type"] == "message" else []:
        if part["type"] == "output_audio":
            raise _invalid_content("Assistant audio messages cannot be created; use 'output_text'.", event)
        if item["role"] == "assistant" and part["type"] != "output_text":
            raise _invalid_content("Assistant messages take 'output_text' content.", event)
        if part["type"] == "input_image" and not sees_images:
            raise no_images(event.event_id, "item.content")
        if part["type"] == "input_audio":
            part.setdefault("transcript", None)
            untranscribed_audio = untranscribed_audio or (bool(part.get("audio")) and part["transcript"] is None)
    return Entry(item=item), untranscribed_audio


def no_images(event_id: str | None, param: str) -> ProtocolError:
    """The error for an image sent to a session whose model cannot see (it used to become "[image]")."""
    return ProtocolError(
        "This server's language model cannot see images. Start the server with --llm-url pointing at a "
        "vision model and --llm-vision to send images to it.",
        code="image_input_not_supported",
        param=param,
        event_id=event_id,
    )


def _invalid_content(message: str, event: ce.ConversationItemCreate) -> ProtocolError:
    return ProtocolError(message, code="invalid_value", param="item.content", event_id=event.event_id)


def item_transcription(entry: Entry, audio: AudioIn, *, job_id: str, language: str | None) -> Transcribe:
    """The decode of a created item's audio (all of it at once: it is complete)."""
    samples = StreamResampler(audio.rate_hz, ENGINE_RATE_HZ).process(audio.samples, last=True)
    options = TranscribeOptions(language=language, final=True)
    return Transcribe(job_id=job_id, item_id=entry.id, audio=samples, final=True, options=options)
