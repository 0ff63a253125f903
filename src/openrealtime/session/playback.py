"""The server's playback buffer as a realtime session sees it (WebRTC calls, issue 11), sans-I/O.

Over a WebSocket the client plays the audio, and only it knows what was heard: it says so with
``conversation.item.truncate``. On a WebRTC call the server plays the audio on the call's track, so it
owns the playback buffer, as OpenAI's does ("In WebRTC and SIP connections the server manages a
buffer of output audio, and thus knows how much audio has been played at a given moment. The server
will automatically truncate unplayed audio when there's a user interruption", realtime-conversations
guide): the session sends its speech as ``PlayAudio`` commands, the runtime's track plays them at the
pace of speech and posts back what its media clock saw (``PlaybackStarted``, ``PlaybackStopped``,
``PlaybackCleared``), and this part turns those into the ``output_audio_buffer.started``,
``.stopped`` and ``.cleared`` events and, after a clear, into the truncation of each item cut short to
the milliseconds that were actually played (its remembered words cut to match).

Which responses have audio queued is known here from the commands sent and the results back, so a
barge-in clears the buffer even after ``response.done``: the voice makes speech faster than it is
played, so an answer is usually done long before its audio ends.
"""

from __future__ import annotations

from openrealtime.protocol import server_events as se
from openrealtime.session.commands import (
    ClearPlayback,
    PlaybackCleared,
    PlaybackResult,
    PlaybackStarted,
    PlaybackStopped,
)
from openrealtime.session.conversation import Conversation
from openrealtime.session.signals import Output


class ServerPlayback:
    """Responses whose audio the server has queued and not yet played out, stopped or cleared."""

    def __init__(self) -> None:
        self._queued: set[str] = set()  # responses with audio sent to the track, not stopped or cleared

    @property
    def pending(self) -> bool:
        """Some audio is queued or playing."""
        return bool(self._queued)

    def queued(self, response_id: str) -> None:
        """A ``PlayAudio`` of ``response_id`` went to the runtime."""
        self._queued.add(response_id)

    def clear(self) -> list[Output]:
        """Drop the queued audio (barge-in, ``output_audio_buffer.clear``): nothing if none is queued."""
        return [ClearPlayback()] if self._queued else []

    def on_result(self, result: PlaybackResult, conversation: Conversation) -> list[Output]:
        """The events of what the media clock saw; after a clear, the truncation of what was cut."""
        match result:
            case PlaybackStarted(response_id=response_id):
                if response_id not in self._queued:
                    return []  # a clear already took it
                return [se.OutputAudioBufferStarted(response_id=response_id)]
            case PlaybackStopped(response_id=response_id):
                if response_id not in self._queued:
                    return []
                self._queued.discard(response_id)
                return [se.OutputAudioBufferStopped(response_id=response_id)]
            case PlaybackCleared(played=played):
                self._queued.clear()
                if not played:
                    return []
                out: list[Output] = [se.OutputAudioBufferCleared(response_id=played[0].response_id)]
                for item in played:
                    entry = conversation.get(item.item_id)
                    if entry is None or item.played_ms >= entry.audio_ms:
                        continue  # deleted meanwhile, played to its end, or truncated already
                    conversation.truncate(item.item_id, 0, item.played_ms, event_id=None)
                    out.append(se.ItemTruncated(item_id=item.item_id, content_index=0, audio_end_ms=item.played_ms))
                return out
