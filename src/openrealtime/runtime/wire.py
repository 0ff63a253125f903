"""The WebSocket edge of a session's input: text frames to session inputs, wire audio to samples.

Sessions take PCM samples with their rate (:class:`~openrealtime.session.commands.AudioIn`), never
base64 or G.711 bytes: this module parses a client frame with the codec, then decodes the audio an
append (or an item created with ``input_audio``) carries, strictly (invalid base64 and appends over
15 MiB are refused) and in the format the session has configured at that moment. One
:class:`ClientFrames` per connection, so a PCM16 sample split across two appends is kept whole.
"""

from __future__ import annotations

from openrealtime.audio.codec import AudioFormat, StreamDecoder, decode_audio
from openrealtime.protocol import client_events as ce
from openrealtime.protocol.codec import SessionKind, decode_base64_audio, parse_client_event
from openrealtime.protocol.items import InputAudio, MessageItem
from openrealtime.session.commands import AudioIn, SessionInput

APPEND_EVENTS = (ce.InputAudioBufferAppend, ce.TranslationAppend)


class ClientFrames:
    """Parses one connection's client frames into session inputs."""

    def __init__(self, kind: SessionKind, *, call: bool = False) -> None:
        self.kind = kind
        self.call = call  # a WebRTC call's data channel: its audio comes on the media track
        self._stream = StreamDecoder()

    def parse(self, frame: str, audio_format: AudioFormat) -> SessionInput:
        """One text frame as the session takes it.

        Raises:
            ProtocolError: The frame is not a valid client event, or its audio is not valid.
        """
        return self.decode(parse_client_event(frame, self.kind, call=self.call), audio_format)

    def decode(self, event: ce.ClientEvent, audio_format: AudioFormat) -> SessionInput:
        """``event`` with the audio it carries decoded from ``audio_format``."""
        if isinstance(event, APPEND_EVENTS):
            data = decode_base64_audio(event.audio, event_id=event.event_id)
            return AudioIn(event, self._stream.decode(data, audio_format), audio_format.rate_hz)
        if isinstance(event, ce.ConversationItemCreate) and isinstance(event.item, MessageItem):
            for part in event.item.content:
                # Audio with a transcript is taken as it is; only audio without one is transcribed.
                if isinstance(part, InputAudio) and part.audio and part.transcript is None:
                    data = decode_base64_audio(part.audio, event_id=event.event_id)
                    return AudioIn(event, decode_audio(data, audio_format), audio_format.rate_hz)
        return event
